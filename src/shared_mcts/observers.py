"""What watches a tuning run as it happens: each an observer of the run's events
(search/events.py), in the spirit of MetaSchedule's measure callbacks. The ledger is the run
folder itself (run_folder.py); per-model statistics are the engine's Credit."""

from __future__ import annotations

import time
from collections.abc import Callable

from .progress import Progress, format_latency
from .search.events import Event, MeasurementEvent, ProposalEvent


class Measurements:
    """Every measurement event, in order."""

    def __init__(self):
        self.events: list[MeasurementEvent] = []

    def on_event(self, event: Event) -> None:
        if isinstance(event, MeasurementEvent):
            self.events.append(event)

    @property
    def latencies(self) -> list[float | None]:
        return [e.latency_s for e in self.events]

    def run_secs(self) -> dict[int, list[float] | None]:
        return {e.node: e.run_secs for e in self.events}


class LLMAccounting:
    """Calls, model seconds and fallbacks of the LLMs among the models, as the run goes."""

    def __init__(self, llm_names: set[str]):
        self.llm_names = llm_names
        self.calls, self.seconds, self.fallbacks = 0, 0.0, 0

    def on_event(self, event: Event) -> None:
        if isinstance(event, ProposalEvent) and event.proposer in self.llm_names:
            self.calls += event.cost["calls"]
            self.seconds += event.cost["seconds"]
            self.fallbacks += event.fell_back_to is not None

    def line(self) -> str:
        return f"; LLM {self.calls} calls, {self.seconds:.0f} s, {self.fallbacks} fallbacks" if self.calls else ""


class ProgressObserver:
    """The live progress line: trial, best latency so far and who found it, speed over untuned."""

    def __init__(self, progress: Progress, workload: str, trials: int, untuned_s: float | None,
                 llm: LLMAccounting, on_trial: Callable[[int, float | None], None] | None = None):
        self.progress, self.workload, self.trials, self.untuned_s = progress, workload, trials, untuned_s
        self.llm, self.on_trial = llm, on_trial
        self.best_s: float | None = None
        self.best_by: str | None = None
        self.started = time.perf_counter()

    def on_event(self, event: Event) -> None:
        if not isinstance(event, MeasurementEvent):
            return
        latency = event.latency_s
        if latency is not None and (self.best_s is None or latency < self.best_s):
            self.best_s, self.best_by = latency, event.proposer
        if self.on_trial:
            self.on_trial(event.trial, latency)
        speed = f", {self.untuned_s / self.best_s:.1f}x over untuned" if self.best_s and self.untuned_s else ""
        self.progress.update(f"{self.workload}: trial {event.trial}/{self.trials}, best {format_latency(self.best_s)}"
                             f"{speed} (by {self.best_by}), {time.perf_counter() - self.started:.0f} s"
                             + self.llm.line())
