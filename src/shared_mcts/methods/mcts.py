"""Our MCTS (shared_mcts.tune) as a bench method; the model set is a parameter."""

from __future__ import annotations

from .base import MethodContext, MethodResult


class MCTS:
    uses_trials = True
    produces_schedule = True

    def __init__(self, name: str, models: list, router: str = "round-robin", space: str = "widened"):
        self.name = name
        self.models = models  # ModelSpec or spec texts
        self.router = router
        self.space = space

    def run(self, ctx: MethodContext) -> MethodResult:
        import io

        from ..progress import Progress
        from ..tune import tune

        result = tune(ctx.workload, trials=ctx.trials, seed=ctx.seed, models=self.models, out=ctx.work_dir / "run",
                      target=ctx.target, measurer=ctx.measurer, progress=Progress(stream=io.StringIO()),
                      on_trial=ctx.on_trial, remeasure_repeat=0, router=self.router, space=self.space)
        info = {"models": result.models, "router": self.router, "space": self.space, "strongest": result.strongest, "per_model": result.per_model, "timing": result.timing, "ranking": result.ranking,
                "stop_reason": result.stop_reason, "run": result.out}
        return MethodResult(result.search_best_s, result.best_mod, result.history, info)
