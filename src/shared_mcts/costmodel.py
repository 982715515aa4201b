"""XGBoost cost model trained online on every measurement of the run, used only to rank
proposals before measuring: never backed up as value, never shown to an LLM untrained.

MetaSchedule's XGBModel returns uniform random scores until 100 samples and retrains only when
the data grew 20%; here warm-up is 0 and it retrains on every update. Until it has
`min_samples` successful measurements, `score` returns None and the search keeps the
proposer's own order (the engine records that as "ranking: proposer order").
"""

from __future__ import annotations


class XGBRanker:
    def __init__(self, space, min_samples: int = 8):
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)

        self.space = space
        self.min_samples = min_samples
        self.model = ms.cost_model.XGBModel(num_warmup_samples=0, adaptive_training=False)
        self.samples = 0
        self.args_info = ms.arg_info.ArgInfo.from_prim_func(space.mod["main"])

    @property
    def trained(self) -> bool:
        return self.samples >= self.min_samples

    def status(self) -> str:
        if self.trained:
            return f"XGBoost trained on {self.samples} measurements"
        return f"untrained ({self.samples}/{self.min_samples} measurements): ranking by proposer order"

    def _candidates(self, candidates):
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)

        return [ms.MeasureCandidate(c.sch, self.args_info) for c in candidates]

    def score(self, candidates) -> list[float] | None:
        if not self.trained or not candidates:
            return None
        return [float(s) for s in self.model.predict(self.space.ctx, self._candidates(candidates))]

    def update(self, candidates, latencies) -> None:
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)

        pairs = [(c, latency) for c, latency in zip(candidates, latencies) if latency is not None]
        if not pairs:
            return
        results = [ms.runner.RunnerResult([latency], None) for _, latency in pairs]
        self.model.update(self.space.ctx, self._candidates([c for c, _ in pairs]), results)
        self.samples += len(pairs)
