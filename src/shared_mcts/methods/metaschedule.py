"""Stock MetaSchedule as a baseline, run through the same builder and runner as everything else.

One class covers three methods that differ only in MetaSchedule's own settings:
`metaschedule` (evolutionary search + XGBoost, stock defaults), `metaschedule-warm0` (the same
with the cost model's random warm-up turned off) and `random` (replay-trace: random valid samples
of the design space, no cost model guidance).
"""

from __future__ import annotations

import logging
import statistics

from .base import MethodContext, MethodResult


def _history_callback(on_trial, history: list):
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

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

    def __init__(self, name: str, strategy: str = "evolutionary", warmup_samples: int | None = None):
        self.name = name
        self.strategy = strategy
        self.warmup_samples = warmup_samples  # None: XGBModel's default (100)

    def _cost_model(self):
        from tvm.s_tir import meta_schedule as ms

        if self.warmup_samples is None:
            return ms.cost_model.XGBModel()
        return ms.cost_model.XGBModel(num_warmup_samples=self.warmup_samples)

    def run(self, ctx: MethodContext) -> MethodResult:
        from tvm.s_tir import meta_schedule as ms
        from tvm.target import Target

        from ..tvm_compat import light_tensor_intrinsics

        if ctx.target.get("kind") == "llvm":
            light_tensor_intrinsics()
        # tune_tir re-arms a DEBUG console logger on every call (it prints each XGBoost
        # iteration); keep the console to errors, its log files in work_dir get everything.
        logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.ERROR)
        history: list[float | None] = []
        work_dir = ctx.work_dir / "metaschedule"
        work_dir.mkdir(parents=True, exist_ok=True)
        database = ms.tir_integration.tune_tir(
            mod=ctx.workload.mod(),
            target=Target(ctx.target),
            work_dir=str(work_dir),
            max_trials_global=ctx.trials,
            num_trials_per_iter=64,
            builder=ctx.measurer.builder,
            runner=ctx.measurer.runner,
            cost_model=self._cost_model(),
            strategy=self.strategy,
            measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), _history_callback(ctx.on_trial, history)],
            seed=ctx.seed,
        )
        measured = [h for h in history if h is not None]
        if not measured:
            return MethodResult(None, None, history, {"error": "every trial failed"})
        sch = ms.tir_integration.compile_tir(database, ctx.workload.mod(), Target(ctx.target))
        return MethodResult(min(measured), sch.mod if sch is not None else None, history, {"database": str(work_dir)})
