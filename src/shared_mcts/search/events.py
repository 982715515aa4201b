"""The events of a tuning run, as dataclasses: what the engine and the run report, in order.

Observers (the ledger, the progress display, LLM accounting; tuning.py) receive them; the ledger
stores `as_record()`, one JSON object per line with an "event" key, which is what a resumed or
replayed run reads back (so the records keep their names and fields). Pure: no TVM.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Protocol


@dataclass
class Event:
    kind: ClassVar[str] = ""
    # Fields left out of the record while they hold their empty default (records stay as small
    # as they were before the field existed).
    optional: ClassVar[tuple[str, ...]] = ()

    def as_record(self) -> dict:
        record: dict[str, Any] = {"event": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.optional and not value:
                continue
            record[f.name] = asdict(value) if hasattr(value, "__dataclass_fields__") else value
        return record


class Observer(Protocol):
    def on_event(self, event: Event) -> None: ...


# -- the search engine's events --------------------------------------------------------------


@dataclass
class ProposalEvent(Event):
    """One model asked to expand one node, and what came of its edits."""

    kind: ClassVar[str] = "proposal"
    optional: ClassVar[tuple[str, ...]] = ("repaired", "log", "fallback_for", "fell_back_to")
    proposal: int  # sequence number; measurements name the proposal they came from
    node: int
    proposer: str
    edits: int  # proposed, valid or not
    valid: int
    invalid: list[dict]  # {"changes", "reason"}
    cost: dict  # ProposalCost.as_dict()
    seconds: float  # wall time of the proposer's call
    note: str
    repaired: list[dict] = field(default_factory=list)  # {"changes", "repairs"}: knobs a structural edit reset
    log: dict = field(default_factory=dict)  # e.g. an LLM's attempts
    fallback_for: str | None = None  # this proposal was made for that model, which produced no valid edit
    fell_back_to: str | None = None  # this model produced no valid edit; that model proposed instead


@dataclass
class MeasurementEvent(Event):
    kind: ClassVar[str] = "measurement"
    node: int
    parent: int
    proposer: str
    proposal: int | None  # None for a fresh sample of the design space
    key: Any  # the candidate's structural hash
    run_secs: list[float] | None
    edit: dict
    rationale: str
    latency_s: float | None
    error: str | None
    trial: int
    predicted_score: float | None


# -- the run's events (tuning.py, llm/caller.py) -------------------------------------------------


@dataclass
class WrongResultEvent(Event):
    kind: ClassVar[str] = "wrong_result"
    node: int
    latency_s: float | None
    message: str


@dataclass
class OrphanCallsEvent(Event):
    """LLM calls that were in flight when an earlier attempt of the run was killed: possibly paid
    for, so charged to the model's budget on resume."""

    kind: ClassVar[str] = "orphan_calls_charged"
    model: str
    count: int


@dataclass
class StoppedEvent(Event):
    kind: ClassVar[str] = "stopped"
    reason: str


@dataclass
class CallStartedEvent(Event):
    """Journaled before every real LLM attempt, so a kill in the middle of a call is known."""

    kind: ClassVar[str] = "call_started"
    model: str
    key: str
    attempt: int
    prompt_tokens: int
    max_tokens: int


@dataclass
class RunStartEvent(Event):
    """The first record of a run: what makes it what it is (its identity), for resuming."""

    kind: ClassVar[str] = "start"
    identity: dict  # workload, trials, seed, models, router, target, space, and how they were given

    def as_record(self) -> dict:
        return {"event": self.kind, **self.identity}


@dataclass
class RunResumedEvent(Event):
    kind: ClassVar[str] = "resume"
    recorded_events: int


@dataclass
class DivergedEvent(Event):
    """A resumed rerun took another path than the recorded one (it should not: same seed, same
    measurements); from here on every event is new."""

    kind: ClassVar[str] = "diverged"
    at: int
    expected: dict


@dataclass
class RunEndEvent(Event):
    kind: ClassVar[str] = "end"
    summary: dict
