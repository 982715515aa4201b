"""Build and time candidates: parallel builds, serial runs, failures as results.

Every method (baselines and our search alike) measures through one `Measurer`, so that
comparisons share the builder, runner and evaluator settings.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

from ..hardware import usable_cores


@dataclass(frozen=True)
class MeasureConfig:
    """How candidates are built and timed. `number`/`repeat`/`min_repeat_ms` are TVM's
    time_evaluator settings: each of `repeat` timings averages `number` runs, with `number`
    raised until one timing lasts `min_repeat_ms`. The candidate's latency is the median."""

    number: int = 1
    repeat: int = 3
    min_repeat_ms: int = 50
    enable_cpu_cache_flush: bool = False
    build_workers: int = 0  # 0: one per usable core
    build_timeout_s: float = 30.0
    run_timeout_s: float = 60.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Measurement:
    """The outcome of measuring one candidate. `latency_s` is None exactly when it failed."""

    latency_s: float | None
    run_secs: list[float] = field(default_factory=list)
    error_kind: str | None = None  # "build", "run", "timeout"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.latency_s is not None


def _error_kind(message: str) -> str:
    return "timeout" if "Timeout" in message or "timeout" in message else "run"


def _first_line(message: str, limit: int = 300) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    # TVM puts the useful line last ("...Error: ..."), after the traceback.
    return (lines[-1] if lines else message)[:limit]


@dataclass
class Clock:
    """Seconds spent building and running, however the builder and runner were called."""

    build_s: float = 0.0
    run_s: float = 0.0


def _timed(builder, runner, clock: Clock):
    """Wrap a MetaSchedule builder and runner so that every call, ours or MetaSchedule's own
    inside `tune_tir`, is timed. The runner waits for its results before returning, so its
    time is the run time, not the time to submit."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.runner.local_runner import LocalRunnerFuture

    @derived_object
    class TimedBuilder(ms.builder.PyBuilder):
        def build(self, build_inputs):
            start = time.perf_counter()
            try:
                return builder.build(build_inputs)
            finally:
                clock.build_s += time.perf_counter() - start

    @derived_object
    class TimedRunner(ms.runner.PyRunner):
        def run(self, runner_inputs):
            start = time.perf_counter()
            try:
                results = [future.result() for future in runner.run(runner_inputs)]
            finally:
                clock.run_s += time.perf_counter() - start
            return [
                LocalRunnerFuture(res=None, error_message=r.error_msg) if r.error_msg is not None
                else LocalRunnerFuture(res=[float(x) for x in r.run_secs], error_message=None)
                for r in results
            ]

    return TimedBuilder(), TimedRunner()


class Measurer:
    """MetaSchedule's LocalBuilder (with the lean build function) and LocalRunner, timed.
    `builder` and `runner` are what MetaSchedule-based methods must pass to tune_tir."""

    def __init__(self, target: dict, config: MeasureConfig | None = None):
        from tvm.s_tir import meta_schedule as ms
        from tvm.target import Target

        from .build import lean_build

        started = time.perf_counter()
        self.config = config or MeasureConfig()
        self.target_dict = target
        self.target = Target(target)
        workers = self.config.build_workers or usable_cores()
        local_builder = ms.builder.LocalBuilder(
            max_workers=workers, timeout_sec=self.config.build_timeout_s, f_build=lean_build
        )
        local_runner = ms.runner.LocalRunner(
            timeout_sec=self.config.run_timeout_s,
            evaluator_config=ms.runner.EvaluatorConfig(
                number=self.config.number,
                repeat=self.config.repeat,
                min_repeat_ms=self.config.min_repeat_ms,
                enable_cpu_cache_flush=self.config.enable_cpu_cache_flush,
            ),
        )
        # LocalBuilder starts a worker pool to check its build function: builder start-up time.
        self.clock = Clock(build_s=time.perf_counter() - started)
        self.builder, self.runner = _timed(local_builder, local_runner, self.clock)

    def measure_mods(self, mods: list) -> list[Measurement]:
        """Build all modules in parallel, then run them one at a time."""
        from tvm.s_tir import meta_schedule as ms

        if not mods:
            return []
        builds = self.builder.build([ms.builder.BuilderInput(mod, self.target) for mod in mods])

        results: list[Measurement | None] = [None] * len(mods)
        run_inputs, run_index = [], []
        for i, (mod, built) in enumerate(zip(mods, builds)):
            if built.error_msg is not None:
                kind = "timeout" if "Timeout" in built.error_msg else "build"
                results[i] = Measurement(None, error_kind=kind, error=_first_line(built.error_msg))
                continue
            args_info = ms.arg_info.ArgInfo.from_prim_func(mod["main"])
            run_inputs.append(ms.runner.RunnerInput(built.artifact_path, device_type="cpu", args_info=args_info))
            run_index.append(i)

        # One input per call keeps runs serial and lets a crash take only its own candidate.
        for i, run_input in zip(run_index, run_inputs):
            result = self.runner.run([run_input])[0].result()
            if result.error_msg is not None:
                results[i] = Measurement(None, error_kind=_error_kind(result.error_msg), error=_first_line(result.error_msg))
            else:
                secs = [float(s) for s in result.run_secs]
                results[i] = Measurement(statistics.median(secs), run_secs=secs)
        self._remove_artifacts(builds)
        return results  # type: ignore[return-value]

    @staticmethod
    def _remove_artifacts(builds) -> None:
        import shutil
        from pathlib import Path

        for built in builds:
            if built.artifact_path:
                shutil.rmtree(Path(built.artifact_path).parent, ignore_errors=True)
