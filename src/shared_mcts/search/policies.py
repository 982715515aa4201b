"""Tree policies as plain functions of the tree's statistics (as in mctx).

At every node the choice is between descending into a child and expanding the node itself.
Expanding is scored like a virtual child: its value is what an expansion is expected to give
(the node's own normalized reward: its neighbours start near it; at the root, the mean of the
fresh samples so far) and its visit count is the number of children it has produced. So the
root is re-sampled and a node re-expanded only while the exploration term pays for it, with one
mechanism instead of a separate widening rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .tree import ROOT, Node, Tree


@dataclass(frozen=True)
class PolicyConfig:
    kind: str = "uct"  # "uct" | "puct"
    exploration: float = 0.5  # c, on values normalized to [0, 1]
    backup: str = "max"  # "max" (best in subtree: we optimize a minimum) | "mean"


def normalize(tree: Tree, reward: float) -> float:
    """Min-max normalization over every measured reward (mctx's qtransform), so the
    exploration constant does not depend on the workload's speedup scale."""
    low, high = tree.reward_range()
    return (reward - low) / (high - low) if high > low else 0.5


def child_value(tree: Tree, node: Node, backup: str) -> float:
    value = tree.value(node, backup)
    return 0.0 if value == -math.inf else normalize(tree, value)


def expansion_value(tree: Tree, node: Node) -> float:
    if node.id == ROOT:
        samples = [r for c in node.children if (r := tree.nodes[c].reward) is not None]
        return sum(normalize(tree, r) for r in samples) / len(samples) if samples else 0.5
    return normalize(tree, node.reward) if node.reward is not None else 0.0


def uct_score(q: float, parent_visits: int, child_visits: int, c: float, prior: float = 1.0) -> float:
    return q + c * math.sqrt(math.log(max(parent_visits, 2)) / max(child_visits, 1))


def puct_score(q: float, parent_visits: int, child_visits: int, c: float, prior: float = 1.0) -> float:
    return q + c * prior * math.sqrt(max(parent_visits, 1)) / (1 + child_visits)


SCORES: dict[str, Callable[..., float]] = {"uct": uct_score, "puct": puct_score}


def can_expand(node: Node) -> bool:
    return not node.exhausted and (node.id == ROOT or node.status == "measured")


def select(tree: Tree, config: PolicyConfig) -> Node:
    """Walk down from the root until expanding the current node scores higher than every
    child. Returns a node that can be expanded, or the root's fallback (an exhausted node with
    nothing to descend into), which the caller handles by sampling the root."""
    score = SCORES[config.kind]
    node = tree.root
    while True:
        options: list[tuple[float, int, Node | None]] = []
        if can_expand(node):
            q = expansion_value(tree, node)
            options.append((score(q, node.visits, max(len(node.children), 1), config.exploration), 0, None))
        for child_id in node.children:
            child = tree.nodes[child_id]
            if child.status == "measured" and child.visits > 0:
                q = child_value(tree, child, config.backup)
                options.append((score(q, node.visits, child.visits, config.exploration, child.prior), -child.id, child))
        if not options:
            return node
        _, _, best = max(options, key=lambda o: (o[0], o[1]))
        if best is None:
            return node
        node = best
