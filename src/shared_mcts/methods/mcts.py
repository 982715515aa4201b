"""Our MCTS (shared_mcts.tuning.tune) as a bench method; the models, router and space are parameters."""

from __future__ import annotations

import io
from dataclasses import asdict

from ..models import ModelSpec
from ..progress import Progress
from ..tuning import tune
from .base import MethodContext, MethodResult

# The plain `mcts` bench method expands with each model in turn: every earlier bench of it did,
# so its results stay comparable; `shared:ROUTER` names any other router.
BENCH_ROUTER = "round-robin"


class MCTS:
    uses_trials = True
    produces_schedule = True

    def __init__(self, name: str, models: list[ModelSpec], router: str = BENCH_ROUTER, space: str = "widened"):
        self.name = name
        self.models = models
        self.router = router
        self.space = space

    def run(self, ctx: MethodContext) -> MethodResult:
        result = tune(ctx.workload, trials=ctx.trials, seed=ctx.seed, models=self.models, out=ctx.work_dir / "run",
                      target=ctx.target, measurer=ctx.measurer, progress=Progress(stream=io.StringIO()),
                      on_trial=ctx.on_trial, remeasure_repeat=0, router=self.router, space=self.space)
        info = {"models": result.models, "router": self.router, "space": self.space, "strongest": result.strongest,
                "per_model": {name: stats.as_dict() for name, stats in result.per_model.items()},
                "timing": asdict(result.timing), "ranking": result.ranking, "stop_reason": result.stop_reason,
                "run": result.out}
        return MethodResult(result.search_best_s, result.best_mod, result.history, info, check=result.check)
