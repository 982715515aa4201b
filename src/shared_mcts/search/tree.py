"""The search tree. Node 0 is a virtual root whose children are fresh samples of the design
space; every other node is one complete candidate, differing from its parent by one edit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

ROOT = 0


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    proposer: str = ""
    edit: dict = field(default_factory=dict)
    rationale: str = ""
    prior: float = 1.0
    candidate: Any = field(default=None, repr=False)  # opaque to the tree; the space knows it
    status: str = "pending"  # pending | measured | failed
    latency_s: float | None = None
    error: str | None = None
    reward: float | None = None  # measured: log(reference latency / latency)
    visits: int = 0
    value_sum: float = 0.0
    value_max: float = -math.inf
    children: list[int] = field(default_factory=list)
    exhausted: bool = False  # expansion found nothing new here repeatedly: stop expanding it

    def as_dict(self, describe=None) -> dict:
        """Plain data; the candidate only through `describe` (the space knows what it holds)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "candidate"}
        d["children"] = list(self.children)
        d["edit"] = dict(self.edit)
        if describe is not None and self.candidate is not None:
            d["candidate"] = describe(self.candidate)
        d["value_max"] = None if self.value_max == -math.inf else self.value_max
        return d


class Tree:
    def __init__(self):
        self.nodes: list[Node] = [Node(id=ROOT, parent=None, depth=0, proposer="root")]
        self.reference_latency_s: float | None = None

    @property
    def root(self) -> Node:
        return self.nodes[ROOT]

    def __len__(self) -> int:
        return len(self.nodes)

    def add_child(self, parent: int, candidate: Any, proposer: str, edit: dict, rationale: str = "", prior: float = 1.0) -> Node:
        node = Node(id=len(self.nodes), parent=parent, depth=self.nodes[parent].depth + 1, proposer=proposer,
                    edit=dict(edit), rationale=rationale, prior=prior, candidate=candidate)
        self.nodes.append(node)
        self.nodes[parent].children.append(node.id)
        return node

    def path(self, node_id: int) -> list[Node]:
        """From the root down to node_id."""
        out = []
        current: int | None = node_id
        while current is not None:
            out.append(self.nodes[current])
            current = self.nodes[current].parent
        return out[::-1]

    def reward_of(self, latency_s: float) -> float:
        """log speedup over the reference latency (the untuned program, else the first measured)."""
        if self.reference_latency_s is None:
            self.reference_latency_s = latency_s
        return math.log(self.reference_latency_s / latency_s)

    def record(self, node_id: int, latency_s: float | None, error: str | None = None) -> None:
        """Store a measurement and back it up to the root. A failed candidate backs up the worst
        reward measured so far: a visit that found nothing good."""
        node = self.nodes[node_id]
        if latency_s is None:
            node.status, node.error = "failed", error
            measured = [n.reward for n in self.nodes if n.reward is not None]
            value = min(measured) if measured else 0.0
        else:
            node.status, node.latency_s = "measured", latency_s
            node.reward = value = self.reward_of(latency_s)
        for ancestor in self.path(node_id):
            ancestor.visits += 1
            ancestor.value_sum += value
            ancestor.value_max = max(ancestor.value_max, value)

    def value(self, node: Node, backup: str = "max") -> float:
        if node.visits == 0:
            return -math.inf
        return node.value_max if backup == "max" else node.value_sum / node.visits

    def measured(self) -> list[Node]:
        return [n for n in self.nodes if n.status == "measured"]

    def best(self) -> Node | None:
        measured = self.measured()
        return min(measured, key=lambda n: (n.latency_s, n.id)) if measured else None

    def reward_range(self) -> tuple[float, float]:
        rewards = [n.reward for n in self.nodes if n.reward is not None]
        return (min(rewards), max(rewards)) if rewards else (0.0, 0.0)

    def as_dict(self, describe=None) -> dict:
        return {"reference_latency_s": self.reference_latency_s, "nodes": [n.as_dict(describe) for n in self.nodes]}
