"""The port of the search core: the one interface every "model" implements, LLM or not. Given a
node (its candidate, knobs, measured history), a proposer returns K edits and what producing
them cost. Pure: no TVM here."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Edit:
    """Knob name -> new value, with the proposer's one-line reason."""

    changes: dict[str, Any]
    rationale: str = ""


@dataclass
class ProposalCost:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    dollars: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProposalRequest:
    node_id: int
    candidate: Any
    knobs: dict  # name -> Knob (see shared_mcts.space.knobs), current values included
    history: list[dict]  # the path from the root: [{"edit", "latency_s", "proposer"}...]
    k: int
    rng: random.Random
    hardware: dict = field(default_factory=dict)  # HostInfo.as_dict()
    tried: list[dict] = field(default_factory=list)  # edits already measured from this node: [{"edit", "latency_s"}]
    siblings: list[dict] = field(default_factory=list)  # the best other children of this node's parent
    next_models: list[str] = field(default_factory=list)  # non-empty: name the model that should act next (COLT)
    # knobs of the design space that structural changes would select (Space.preview), or None
    preview: Callable[[dict], dict | None] = lambda changes: None


@dataclass
class Proposal:
    edits: list[Edit]
    cost: ProposalCost = field(default_factory=ProposalCost)
    note: str = ""
    rejected: list[dict] = field(default_factory=list)  # edits the proposer itself found invalid: {"changes", "reason"}
    log: dict = field(default_factory=dict)  # for the ledger: e.g. an LLM's attempts
    fallback: Proposal | None = None  # produced by `fallback_name` because this proposer produced no valid edit
    fallback_name: str = ""
    next_model: str | None = None  # the model this one says should act next (COLT's joint action)


@runtime_checkable
class Proposer(Protocol):
    name: str

    def propose(self, request: ProposalRequest) -> Proposal: ...
