"""Where the search grows and which model grows it: the one selection interface of the engine.

A `Selector` answers `ask` with (node, model) pairs for a round and learns from `tell`, which
returns what each pair produced once measured. Two kinds serve it:
- `TreePolicySelector`: a tree policy (policies.py: UCT/PUCT with expansion as a virtual child)
  picks the node, then a `Router` (routers.py) picks the model;
- `ABMCTSSelector` (abmcts.py): Sakana AI's AB-MCTS picks both jointly through treequest.
Proposing, validating, deduplicating, ranking, measuring and credit stay the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .policies import PolicyConfig, can_expand, select
from .routers import Router
from .tree import ROOT, Node

if TYPE_CHECKING:  # the engine drives selectors; they only read its state
    from .engine import SearchEngine


@dataclass(frozen=True)
class Ask:
    node: Node  # the node to expand; the root means: sample the design space
    model: str | None  # the model that expands it; None: sample the design space (no model is asked)
    want: int  # candidates to measure from this expansion at most


@dataclass(frozen=True)
class Measured:
    child: Node
    gain: float  # credited to the model that proposed it (credit.py)
    new_best: bool


@dataclass(frozen=True)
class Outcome:
    ask: Ask
    measured: list[Measured] = field(default_factory=list)  # empty: nothing new came of the ask


class Selector:
    """`ask` is required; `bind` and `tell` are optional hooks (no-ops here)."""

    name: str = ""
    asks_next_model: bool = False  # the engine asks the acting model to name the next one (COLT)

    def bind(self, engine: SearchEngine) -> None:
        """Called once, before the first round."""

    def ask(self, engine: SearchEngine, want: int) -> list[Ask]:
        raise NotImplementedError

    def tell(self, engine: SearchEngine, outcomes: list[Outcome]) -> None:
        """What came of each ask of the round, in ask order."""


class TreePolicySelector(Selector):
    def __init__(self, router: Router, policy: PolicyConfig | None = None):
        self.router = router
        self.policy = policy or PolicyConfig()
        self.name = router.name
        self.asks_next_model = router.asks_next_model

    def bind(self, engine: SearchEngine) -> None:
        self.router.bind(engine.route)

    def ask(self, engine: SearchEngine, want: int) -> list[Ask]:
        node = select(engine.tree, self.policy)
        if node.id == ROOT and not engine.tree.root.children:
            want = min(max(engine.config.initial_samples, 1), engine.budget.remaining)
        model = None
        if node.id != ROOT and can_expand(node):
            engine.route.trials_used = engine.budget.used_trials
            model = self.router.choose(node, engine.tree, engine.rng, engine.route)
        if model is None:  # the root, a node that cannot grow, or every model's budget spent
            return [Ask(engine.tree.root, None, want)]
        self.router.on_expansion(node, engine.tree, model)
        return [Ask(node, model, want)]

    def tell(self, engine: SearchEngine, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.ask.node.id == ROOT:
                continue
            for m in outcome.measured:
                self.router.on_measurement(outcome.ask.node, m.child, m.child.proposer, m.gain, m.new_best)
