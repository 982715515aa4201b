"""Credit: what each model spent and what its edits gained, as measured. Pure.

The one source of per-model statistics: routers read them during the search, and the run's
summary and the bench report show them. A measured candidate's gain is credited to the model
that proposed its edit: the log of (parent latency / its latency) when it improved on its
parent, and whether it set a new best of the run (the first measurement of a run is no
improvement, so never a new best). Cost is what the model's calls cost (dollars from the models
file; for local models their seconds times their price)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from .events import ProposalEvent


@dataclass
class ModelStats:
    expansions: int = 0  # times the model was asked to expand a node
    expansions_as_fallback: int = 0  # of those, made because another model produced no valid edit
    calls: int = 0  # attempts (LLM calls, retries included; one per expansion for priced non-LLM models)
    failed_calls: int = 0
    cached_calls: int = 0  # served from the replay cache
    fallbacks: int = 0  # expansions that produced no valid edit and were handed to a fallback
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0
    seconds: float = 0.0  # wall time of its proposals
    model_seconds: float = 0.0  # the model's own time, as charged
    edits: int = 0  # proposed, valid or not
    valid_edits: int = 0
    invalid_edits: int = 0
    measured: int = 0  # candidates of its edits that were measured
    failed: int = 0
    improved_parent: int = 0
    gain: float = 0.0  # sum of log(parent latency / latency) over its improvements
    new_bests: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def valid_edit_rate(self) -> float | None:
        return self.valid_edits / self.edits if self.edits else None

    def as_dict(self) -> dict:
        d = asdict(self)
        if self.edits:
            d["valid_edit_rate"] = self.valid_edit_rate
        return d

    @classmethod
    def from_dict(cls, data: dict) -> ModelStats:
        """Statistics as a summary or bench record holds them (missing counts are zero)."""
        values: dict[str, Any] = {}
        for name in (f.name for f in fields(cls)):
            value = data.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values[name] = value
        return cls(**values)


class Credit:
    def __init__(self):
        self.stats: dict[str, ModelStats] = {}
        self.best_latency: float | None = None
        self.since_new_best = 0  # measured candidates since the last new best (stagnation)

    def of(self, name: str) -> ModelStats:
        return self.stats.setdefault(name, ModelStats())

    def on_proposal(self, event: ProposalEvent) -> None:
        s = self.of(event.proposer)
        s.expansions += 1
        s.expansions_as_fallback += event.fallback_for is not None
        s.fallbacks += event.fell_back_to is not None
        s.calls += event.cost["calls"]
        s.prompt_tokens += event.cost["prompt_tokens"]
        s.completion_tokens += event.cost["completion_tokens"]
        s.dollars += event.cost["dollars"]
        s.model_seconds += event.cost["seconds"]
        s.seconds += event.seconds
        s.edits += event.edits
        s.valid_edits += event.valid
        s.invalid_edits += len(event.invalid)
        attempts = event.log.get("call", {}).get("attempts", [])
        s.failed_calls += sum(1 for a in attempts if not a["ok"])
        s.cached_calls += sum(1 for a in attempts if a.get("cached"))

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
        return gain

    def as_dict(self) -> dict:
        return {name: s.as_dict() for name, s in self.stats.items()}
