"""The one interface every "model" implements, LLM or not: given a node, propose K edits and
say what producing them cost. Pure: no TVM here."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


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


@dataclass
class Proposal:
    edits: list[Edit]
    cost: ProposalCost = field(default_factory=ProposalCost)
    note: str = ""


class Proposer(Protocol):
    name: str

    def propose(self, request: ProposalRequest) -> Proposal: ...
