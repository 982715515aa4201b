"""Build and time candidates: parallel builds, serial runs, failures as results.

Every method (baselines and our search alike) measures through one `Measurer`, so that
comparisons share the builder, runner and evaluator settings. Builds are always local; runs
are local or, with `rpc="HOST:PORT:KEY"`, on a device registered with a TVM RPC tracker.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DeviceUnavailable, UserError, last_line
from ..hardware import usable_cores
from ..threads import use_target_cores
from .build import lean_build
from .remeasure import remeasure, summarize


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
    rpc: str | None = None  # "HOST:PORT:KEY" of a TVM RPC tracker and device key; None: this machine
    rpc_wait_s: float = 30.0  # how long a vanished RPC device may take to come back before the run stops

    def as_dict(self) -> dict:
        settings = asdict(self)
        if self.rpc is None:  # local settings read as they did before remote runs existed
            del settings["rpc"], settings["rpc_wait_s"]
        return settings


@dataclass(frozen=True)
class RPCAddress:
    host: str
    port: int
    key: str

    @classmethod
    def parse(cls, text: str) -> RPCAddress:
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not all(parts):
            raise UserError(f"{text!r}: expected HOST:PORT:KEY, e.g. 127.0.0.1:9190:local", argument="rpc")
        host, port, key = parts
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"{text!r}: port {port!r} is not a port number", argument="rpc")
        return cls(host, int(port), key)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}:{self.key}"

    def registered(self) -> bool:
        """Whether a server with our key is registered with the tracker now."""

        from tvm import rpc  # TVM: loaded on use (seconds to import)

        try:
            # TVM's connect_tracker retries for 60 s when nobody listens: ask the socket first.
            socket.create_connection((self.host, self.port), timeout=2.0).close()
            summary = rpc.connect_tracker(self.host, self.port).summary()
        except Exception:  # tracker down or unreachable: no device either
            return False
        return any(info.get("key") == f"server:{self.key}" for info in summary.get("server_info", []))

    def wait_registered(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.registered():
            if time.monotonic() >= deadline:
                return False
            time.sleep(1.0)
        return True


@dataclass
class Measurement:
    """The outcome of measuring one candidate. `latency_s` is None exactly when it failed."""

    latency_s: float | None
    run_secs: list[float] = field(default_factory=list)
    error_kind: str | None = None  # "build", "timeout", "crash" (the runner process died), "run"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.latency_s is not None


def _error_kind(message: str) -> str:
    if "Timeout" in message or "timeout" in message:
        return "timeout"
    # TVM's popen pool says this when its worker died (a segfault or abort in the candidate).
    return "crash" if "Subprocess terminated" in message else "run"


@dataclass
class Clock:
    """Seconds spent building and running, however the builder and runner were called."""

    build_s: float = 0.0
    run_s: float = 0.0


def _timed(builder, runner, clock: Clock):
    """Wrap a MetaSchedule builder and runner so that every call, ours or MetaSchedule's own
    inside `tune_tir`, is timed. The runner waits for its results before returning, so its
    time is the run time, not the time to submit."""
    from tvm.ir.utils import derived_object  # TVM: loaded on use (seconds to import)
    from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)
    from tvm.s_tir.meta_schedule.runner.local_runner import LocalRunnerFuture  # TVM: loaded on use (seconds to import)

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
    """MetaSchedule's LocalBuilder (with the lean build function) and LocalRunner or RPCRunner,
    timed. `builder` and `runner` are what MetaSchedule-based methods must pass to tune_tir.

    run_evaluator: MetaSchedule's `f_run_evaluator` (None: its default time_evaluator); tests
    use it to inject runner faults, and it is how a custom timing procedure would plug in.
    """

    def __init__(self, target: dict, config: MeasureConfig | None = None, run_evaluator=None):
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)
        from tvm.target import Target  # TVM: loaded on use (seconds to import)



        started = time.perf_counter()
        self.threads = use_target_cores(target)  # before the worker pools start: they inherit it
        self.config = config or MeasureConfig()
        self.target_dict = target
        self.target = Target(target)
        self.run_evaluator = run_evaluator
        self.remote = RPCAddress.parse(self.config.rpc) if self.config.rpc else None
        if self.remote and not self.remote.registered():
            raise UserError(f"{self.remote}: no RPC server with key {self.remote.key!r} is registered with a "
                            f"tracker at {self.remote.host}:{self.remote.port}", argument="rpc")
        workers = self.config.build_workers or usable_cores()
        local_builder = ms.builder.LocalBuilder(
            max_workers=workers, timeout_sec=self.config.build_timeout_s, f_build=lean_build
        )
        local_runner = self._runner(self.config.repeat, self.config.min_repeat_ms)
        # LocalBuilder starts a worker pool to check its build function: builder start-up time.
        self.clock = Clock(build_s=time.perf_counter() - started)
        self.builder, self.runner = _timed(local_builder, local_runner, self.clock)

    def _runner(self, repeat: int, min_repeat_ms: int):
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)

        evaluator = ms.runner.EvaluatorConfig(
            number=self.config.number, repeat=repeat, min_repeat_ms=min_repeat_ms,
            enable_cpu_cache_flush=self.config.enable_cpu_cache_flush,
        )
        if self.remote is None:
            return ms.runner.LocalRunner(timeout_sec=self.config.run_timeout_s, evaluator_config=evaluator,
                                         f_run_evaluator=self.run_evaluator)
        rpc = ms.runner.RPCConfig(tracker_host=self.remote.host, tracker_port=self.remote.port,
                                  tracker_key=self.remote.key, session_timeout_sec=self.config.run_timeout_s)
        from tvm.support.popen_pool import PopenPoolExecutor  # TVM: loaded on use (seconds to import)

        runner = ms.runner.RPCRunner(rpc_config=rpc, evaluator_config=evaluator, f_run_evaluator=self.run_evaluator)
        # RPCRunner's own pool waits forever, and a request for a vanished server never returns:
        # bound each candidate's session (request, upload, run) by the run timeout.
        runner.pool.shutdown()
        runner.pool = PopenPoolExecutor(max_workers=1, timeout=self.config.run_timeout_s)
        return runner

    def measure_mods(self, mods: list) -> list[Measurement]:
        """Build all modules in parallel, then run them one at a time."""
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)

        if not mods:
            return []
        builds = self.builder.build([ms.builder.BuilderInput(mod, self.target) for mod in mods])

        results: list[Measurement | None] = [None] * len(mods)
        run_inputs, run_index = [], []
        for i, (mod, built) in enumerate(zip(mods, builds)):
            if built.error_msg is not None:
                kind = "timeout" if "Timeout" in built.error_msg else "build"
                results[i] = Measurement(None, error_kind=kind, error=last_line(built.error_msg))
                continue
            args_info = ms.arg_info.ArgInfo.from_entry_func(mod, remove_preproc=True)
            run_inputs.append(ms.runner.RunnerInput(built.artifact_path, device_type="cpu", args_info=args_info))
            run_index.append(i)

        # One input per call keeps runs serial and lets a crash take only its own candidate.
        try:
            for i, run_input in zip(run_index, run_inputs):
                result = self.runner.run([run_input])[0].result()
                if result.error_msg is not None:
                    self._check_device(results[:i], result.error_msg)
                    results[i] = Measurement(None, error_kind=_error_kind(result.error_msg), error=last_line(result.error_msg))
                else:
                    secs = [float(s) for s in result.run_secs]
                    results[i] = Measurement(statistics.median(secs), run_secs=secs)
        finally:
            self._remove_artifacts(builds)
        return results  # type: ignore[return-value]

    def _check_device(self, finished: list, error: str) -> None:
        """A remote run failed: the candidate's fault, unless the device itself went away."""
        if self.remote is not None and not self.remote.wait_registered(self.config.rpc_wait_s):
            raise DeviceUnavailable(f"RPC device {self.remote} is gone (no server with key {self.remote.key!r} at the "
                                    f"tracker for {self.config.rpc_wait_s:.0f} s; last error: {last_line(error)})",
                                    finished)

    def remeasure(self, mod, repeat: int = 10, min_repeat_ms: int = 100, prepacked: bool = True):
        """Time a final schedule again, in a fresh process, with more repeats: locally in a child
        process; on the RPC device in a new session (the server runs each session in its own process).
        prepacked=False keeps the weight packing inside the timed kernel (local only)."""
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)


        if self.remote is None:
            return remeasure(mod, self.target_dict, repeat=repeat, min_repeat_ms=min_repeat_ms, prepacked=prepacked)
        if not prepacked:
            raise ValueError("timing the in-kernel packing variant needs a local runner")
        (built,) = self.builder.build([ms.builder.BuilderInput(mod, self.target)])
        try:
            if built.error_msg is not None:
                raise RuntimeError(f"remeasure failed: {last_line(built.error_msg)}")
            args_info = ms.arg_info.ArgInfo.from_entry_func(mod, remove_preproc=True)
            runner = self._runner(repeat, min_repeat_ms)
            result = runner.run([ms.runner.RunnerInput(built.artifact_path, device_type="cpu", args_info=args_info)])[0].result()
        finally:
            self._remove_artifacts([built])
        if result.error_msg is not None:
            self._check_device([], result.error_msg)
            raise RuntimeError(f"remeasure failed: {last_line(result.error_msg)}")
        return summarize([float(x) for x in result.run_secs])

    @staticmethod
    def _remove_artifacts(builds) -> None:

        for built in builds:
            if built.artifact_path:
                shutil.rmtree(Path(built.artifact_path).parent, ignore_errors=True)
