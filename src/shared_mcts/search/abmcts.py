"""`abmcts`: Sakana AI's AB-MCTS (the `treequest` library, NeurIPS 2025) as an outside
baseline for our routers. Its multi-LLM mode treats each model as an action of one adaptive
tree search; here each action is one of our proposers, driven through treequest's ask/tell
interface, and the score it learns from is the measured speedup, normalized to [0, 1].

Only the choice of (node, model) is treequest's. Proposing, validating, deduplicating,
ranking by the cost model, measuring, recording in our tree, credit and the ledger are the
engine's own (engine.py), so the comparison with our routers changes one thing only.
A treequest node's state is the id of our tree node it stands for (None at its root). treequest
refuses None for any other node, so a root expansion that yields nothing measured is told with
our root's id, and that id expands like the root.
"""

from __future__ import annotations

import random
from typing import Callable

from .engine import SearchEngine
from .tree import ROOT


class ABMCTSEngine(SearchEngine):
    def __init__(self, space, evaluator, proposers, budget, seed: int = 0, *,
                 score: Callable[[float | None], float], **kwargs):
        super().__init__(space, evaluator, proposers, budget, seed=seed, **kwargs)
        try:
            import numpy as np
            import ulid

            # Two distributions install a top-level `ulid`: ulid-py (treequest's, with ulid.new)
            # and python-ulid (pulled in by `llm`, with ulid.ULID); the last installed wins.
            if not hasattr(ulid, "new") and hasattr(ulid, "ULID"):
                ulid.new = ulid.ULID
            import treequest
        except ImportError:
            raise RuntimeError("the abmcts router needs the treequest package: pip install treequest") from None
        # treequest's Thompson sampling draws from numpy's and random's global generators.
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self.algo = treequest.ABMCTSA()
        self.state = self.algo.init_tree()
        self.score = score
        self.actions = sorted(self.proposers)

    def _round(self) -> None:
        want = min(self.config.batch_size, self.budget.remaining)
        self.state, trials = self.algo.ask_batch(self.state, want, self.actions)
        picks, taken, told = [], set(), []
        for trial in trials:
            our_id = self.state.tree.get_node(trial.node_to_expand).state
            # A model whose budget is spent cannot act: the node gets a fresh sample instead.
            if our_id in (None, ROOT) or not self.route.models[trial.action].available():
                parent = self.tree.root
                proposals = self._expand_root(1)
            else:
                parent = self.tree.nodes[our_id]
                proposals = self._expand(parent, trial.action)
            fresh = self._fresh(proposals, taken)
            if not fresh:  # nothing new: the action scores zero here
                told.append((trial, our_id, None))
                continue
            (item, predicted), = self._ranked(fresh, 1)
            picks.append((parent, item, predicted, 0))
            told.append((trial, our_id, len(picks) - 1))
        children = self._measure_and_record(picks) if picks else []
        for trial, our_id, index in told:
            if index is None:
                self.state = self.algo.tell(self.state, trial.trial_id, (_or_root(our_id), 0.0))
            else:
                child = children[index]
                state = child.id if child.latency_s is not None else _or_root(our_id)
                self.state = self.algo.tell(self.state, trial.trial_id, (state, self.score(child.latency_s)))


def _or_root(node_id: int | None) -> int:
    return ROOT if node_id is None else node_id


def speedup_score(reference_s: float, roofline_s: float) -> Callable[[float | None], float]:
    """Score in [0, 1]: how far a latency went from the untuned program's toward the hardware's
    roofline (FLOPs / peak), on a log scale. Failed candidates score 0."""
    import math

    span = math.log(reference_s / roofline_s) if reference_s > roofline_s > 0 else 1.0

    def score(latency_s: float | None) -> float:
        if latency_s is None or latency_s <= 0:
            return 0.0
        return min(max(math.log(reference_s / latency_s) / span, 0.0), 1.0)

    return score

