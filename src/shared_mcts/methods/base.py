"""The interface every tuning method implements, baselines and our search alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Called after each measured trial with (trial index from 1, latency in s or None if failed).
TrialCallback = Callable[[int, "float | None"], None]


@dataclass
class MethodContext:
    workload: object  # shared_mcts.workloads.Workload
    target: dict
    trials: int
    seed: int
    measurer: object  # shared_mcts.measure.Measurer
    work_dir: Path
    on_trial: TrialCallback = lambda i, latency: None


@dataclass
class MethodResult:
    """`best_mod` is the IRModule of the best schedule (None for vendor libraries, or when every
    trial failed); `history` holds every measured trial's latency in order (None = failed)."""

    best_latency_s: float | None
    best_mod: object | None
    history: list[float | None] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    check: Any = None  # measure.CheckResult of best_mod when the method already checked it


class Method(Protocol):
    name: str
    uses_trials: bool  # False for untuned and vendor anchors: one cell per seed, trials ignored
    produces_schedule: bool

    def run(self, ctx: MethodContext) -> MethodResult: ...
