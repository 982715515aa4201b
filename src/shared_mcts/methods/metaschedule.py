"""MetaSchedule as a baseline, run through the same builder and runner as everything else.

One class, configured by `MetaScheduleConfig`; the named configurations are in `CONFIGS`:
`metaschedule` (small budgets: 8 candidates per iteration, so a 32-trial run gets several
generations of evolutionary feedback, and an XGBoost model trained from the first sample on),
`metaschedule-stock` (MetaSchedule's defaults: 64 per iteration, XGBoost scores random below
100 samples: at 32 or 64 trials a single generation without guidance), `metaschedule-warm0`
(64 per iteration, warm-up off) and `random` (replay-trace: random valid samples of the design
space, no cost model guidance).
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from dataclasses import dataclass

from ..space.space import space_generator
from ..tvm_compat import light_tensor_intrinsics
from .base import MethodContext, MethodResult

STOCK_WARMUP_SAMPLES = 100  # XGBModel's default num_warmup_samples in TVM 0.27


@dataclass(frozen=True)
class MetaScheduleConfig:
    strategy: str = "evolutionary"  # or "replay-trace"
    num_trials_per_iter: int = 64
    warmup_samples: int = STOCK_WARMUP_SAMPLES  # XGBoost returns random scores below this many samples
    adaptive_training: bool = True  # XGBoost retrains only when the data grew by 20%

    def as_info(self) -> dict:
        return dataclasses.asdict(self)


CONFIGS = {
    "metaschedule": MetaScheduleConfig(num_trials_per_iter=8, warmup_samples=0, adaptive_training=False),
    "metaschedule-stock": MetaScheduleConfig(),
    "metaschedule-warm0": MetaScheduleConfig(warmup_samples=0),
    "random": MetaScheduleConfig(strategy="replay-trace"),
}


def _history_callback(on_trial, history: list):
    from tvm.ir.utils import derived_object  # TVM: loaded on use (seconds to import)
    from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)

    @derived_object
    class RecordTrials(ms.measure_callback.PyMeasureCallback):
        def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
            for result in runner_results:
                latency = statistics.median(float(s) for s in result.run_secs) if result.error_msg is None else None
                history.append(latency)
                on_trial(len(history), latency)

    return RecordTrials()


class MetaSchedule:
    uses_trials = True
    produces_schedule = True

    def __init__(self, name: str, config: MetaScheduleConfig, space: str = "widened"):
        self.name = name
        self.config = config
        self.space = space  # which design spaces MetaSchedule searches (space/space.py: SPACES)

    def _cost_model(self):
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)

        return ms.cost_model.XGBModel(num_warmup_samples=self.config.warmup_samples,
                                      adaptive_training=self.config.adaptive_training)

    def run(self, ctx: MethodContext) -> MethodResult:
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)
        from tvm.target import Target  # TVM: loaded on use (seconds to import)


        if ctx.target.get("kind") == "llvm":
            light_tensor_intrinsics()
        # tune_tir re-arms a DEBUG console logger on every call (it prints each XGBoost
        # iteration); keep the console to errors, its log files in work_dir get everything.
        logger = logging.getLogger("tvm.s_tir.meta_schedule")
        logger.setLevel(logging.ERROR)
        # tune_tir's logging set-up refers to every handler already on its logger by name and fails
        # on an unnamed one (pytest's capture handlers end up there): detach those for the run.
        unnamed = [h for h in logger.handlers if h.get_name() is None]
        for handler in unnamed:
            logger.removeHandler(handler)
        history: list[float | None] = []
        work_dir = ctx.work_dir / "metaschedule"
        work_dir.mkdir(parents=True, exist_ok=True)
        try:
            database = ms.tir_integration.tune_tir(
                mod=ctx.workload.mod(),
                target=Target(ctx.target),
                work_dir=str(work_dir),
                max_trials_global=ctx.trials,
                num_trials_per_iter=self.config.num_trials_per_iter,
                builder=ctx.measurer.builder,
                runner=ctx.measurer.runner,
                cost_model=self._cost_model(),
                strategy=self.config.strategy,
                measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), _history_callback(ctx.on_trial, history)],
                seed=ctx.seed,
                space=space_generator(ctx.workload, ctx.target, self.space),
            )
        finally:
            for handler in unnamed:
                logger.addHandler(handler)
        info = {**self.config.as_info(), "space": self.space}
        measured = [h for h in history if h is not None]
        if not measured:
            return MethodResult(None, None, history, {**info, "error": "every trial failed"})
        sch = ms.tir_integration.compile_tir(database, ctx.workload.mod(), Target(ctx.target))
        return MethodResult(min(measured), sch.mod if sch is not None else None, history, {**info, "database": str(work_dir)})
