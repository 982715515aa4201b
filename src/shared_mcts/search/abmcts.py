"""`abmcts`: Sakana AI's AB-MCTS (the `treequest` library, NeurIPS 2025) as an outside
baseline for our routers. Its multi-LLM mode treats each model as an action of one adaptive
tree search; here each action is one of our proposers, driven through treequest's ask/tell
interface, and the score it learns from is the measured speedup, normalized to [0, 1].

Only the choice of (node, model) is treequest's: this is a `Selector` (selector.py) like our
tree policy + router. Proposing, validating, deduplicating, ranking by the cost model,
measuring, recording in our tree, credit and the ledger are the engine's own (engine.py), so the
comparison with our routers changes one thing only.
A treequest node's state is the id of our tree node it stands for (None at its root). treequest
refuses None for any other node, so a root expansion that yields nothing measured is told with
our root's id, and that id expands like the root.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .selector import Ask, Outcome, Selector
from .tree import ROOT

if TYPE_CHECKING:
    from .engine import SearchEngine


class ABMCTSSelector(Selector):
    name = "abmcts"

    def __init__(self, score: Callable[[float | None], float], seed: int = 0):
        try:
            import ulid  # treequest's id library, only with treequest

            # Two distributions install a top-level `ulid`: ulid-py (treequest's, with ulid.new)
            # and python-ulid (pulled in by `llm`, with ulid.ULID); the last installed wins.
            if not hasattr(ulid, "new") and hasattr(ulid, "ULID"):
                ulid.new = ulid.ULID  # type: ignore[attr-defined]
            import treequest  # here, not at the top: it imports scipy, and only this selector needs it
        except ImportError:
            raise RuntimeError("the abmcts router needs the treequest package: pip install treequest") from None
        # treequest's Thompson sampling draws from numpy's and random's global generators.
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self.algo: Any = treequest.ABMCTSA()
        self.state = self.algo.init_tree()
        self.score = score
        self._pending: list[tuple] = []  # this round's (treequest trial, our node id or None), in ask order

    def ask(self, engine: SearchEngine, want: int) -> list[Ask]:
        actions = sorted(engine.proposers)
        self.state, trials = self.algo.ask_batch(self.state, want, actions)
        asks, self._pending = [], []
        for trial in trials:
            our_id = self.state.tree.get_node(trial.node_to_expand).state
            self._pending.append((trial, our_id))
            # (A model whose budget is spent when its turn comes gets a fresh sample instead: engine.)
            if our_id in (None, ROOT):
                asks.append(Ask(engine.tree.root, None, 1))
            else:
                asks.append(Ask(engine.tree.nodes[our_id], trial.action, 1))
        return asks

    def tell(self, engine: SearchEngine, outcomes: list[Outcome]) -> None:
        for (trial, our_id), outcome in zip(self._pending, outcomes):
            if not outcome.measured:  # nothing new: the action scores zero here
                self.state = self.algo.tell(self.state, trial.trial_id, (_or_root(our_id), 0.0))
                continue
            child = outcome.measured[0].child
            state = child.id if child.latency_s is not None else _or_root(our_id)
            self.state = self.algo.tell(self.state, trial.trial_id, (state, self.score(child.latency_s)))


def _or_root(node_id: int | None) -> int:
    return ROOT if node_id is None else node_id


def speedup_score(reference_s: float, roofline_s: float) -> Callable[[float | None], float]:
    """Score in [0, 1]: how far a latency went from the untuned program's toward the hardware's
    roofline (FLOPs / peak), on a log scale. Failed candidates score 0."""
    span = math.log(reference_s / roofline_s) if reference_s > roofline_s > 0 else 1.0

    def score(latency_s: float | None) -> float:
        if latency_s is None or latency_s <= 0:
            return 0.0
        return min(max(math.log(reference_s / latency_s) / span, 0.0), 1.0)

    return score
