"""Credit: what each model spent and what its edits gained, as measured. Pure.

A measured candidate's gain is credited to the model that proposed its edit: the log of
(parent latency / its latency) when it improved on its parent, and whether it set a new best
of the run. Cost is what the model's calls cost (dollars from the models file; for local
models their seconds times their price). Routers read these statistics; the ledger and
summary.json report them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class ModelStats:
    expansions: int = 0  # times the model was asked to expand a node
    calls: int = 0  # attempts (LLM calls, retries included; one per expansion for priced non-LLM models)
    dollars: float = 0.0
    seconds: float = 0.0
    tokens: int = 0
    measured: int = 0  # candidates of its edits that were measured
    failed: int = 0
    improved_parent: int = 0
    gain: float = 0.0  # sum of log(parent latency / latency) over its improvements
    new_bests: int = 0
    history: list = field(default_factory=list)  # per measured candidate: (gain, new best)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("history")
        return d


class Credit:
    def __init__(self):
        self.stats: dict[str, ModelStats] = {}
        self.best_latency: float | None = None
        self.since_new_best = 0  # measured candidates since the last new best (stagnation)
        self.order: list[tuple[str, float, bool]] = []  # every measured candidate: (model, gain, new best)

    def of(self, name: str) -> ModelStats:
        return self.stats.setdefault(name, ModelStats())

    def on_proposal(self, name: str, calls: int, dollars: float, seconds: float, tokens: int) -> None:
        s = self.of(name)
        s.expansions += 1
        s.calls += calls
        s.dollars += dollars
        s.seconds += seconds
        s.tokens += tokens

    def on_measurement(self, name: str, parent_latency: float | None, latency: float | None) -> float:
        """Record one measured candidate of `name`'s; returns the gain credited."""
        s = self.of(name)
        s.measured += 1
        gain, new_best = 0.0, False
        if latency is None:
            s.failed += 1
        else:
            if parent_latency is not None and latency < parent_latency:
                gain = math.log(parent_latency / latency)
                s.improved_parent += 1
                s.gain += gain
            if self.best_latency is None or latency < self.best_latency:
                new_best = self.best_latency is not None  # the first measurement is no "improvement"
                self.best_latency = latency
        if new_best:
            s.new_bests += 1
            self.since_new_best = 0
        else:
            self.since_new_best += 1
        s.history.append((gain, new_best))
        self.order.append((name, gain, new_best))
        return gain

    def as_dict(self) -> dict:
        return {name: s.as_dict() for name, s in self.stats.items()}
