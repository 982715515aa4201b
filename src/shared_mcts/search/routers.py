"""Routers: which model expands the selected node. Plain policies over the tree's and the
models' measured statistics (pure: no TVM, no network), chosen by name:

  single:NAME   one model does every expansion (the Reasoning Compiler setting)
  round-robin   each model in turn
  phase         cheaper models for the first part of the trial budget, then the strongest
  bandit        measured gain per unit cost, UCB, per node situation; escalates on stagnation
  colt          COLT: the acting model names the next one; model-aware tree score; escalation
                after K consecutive regressions of cheaper models

Every router chooses only among models whose budgets admit another call; when none does it
returns None and the engine samples the design space instead (which costs no model).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .credit import Credit
from .policies import normalize
from .tree import Node, Tree


@dataclass
class ModelProfile:
    name: str
    strength: float  # larger is stronger; the strongest is the escalation target
    expected_dollars: float  # prior cost of one expansion, until measured costs replace it
    available: Callable[[], bool] = lambda: True  # its budgets admit another call


@dataclass
class RouteContext:
    models: dict[str, ModelProfile]
    credit: Credit
    trials_used: int = 0
    trials_total: int = 1
    next_model_hint: str | None = None  # COLT: the model the last acting model named

    def available(self) -> list[str]:
        return [name for name, profile in self.models.items() if profile.available()]

    def cost(self, name: str) -> float:
        """Mean measured dollars per expansion, else the prior."""
        s = self.credit.stats.get(name)
        if s and s.expansions:
            return s.dollars / s.expansions
        return self.models[name].expected_dollars

    def strongest(self, names: list[str]) -> str:
        return max(names, key=lambda n: (self.models[n].strength, n))


class Router:
    """Chooses which model expands the node the tree policy selected. `choose` is required; the
    other hooks are optional (no-ops here) for routers that learn or need to know the models."""

    name: str = ""
    asks_next_model: bool = False  # True: the engine asks the acting model to name the next one (COLT)

    def bind(self, ctx: RouteContext) -> None:
        """Called once, before the search, with the run's models."""

    def choose(self, node: Node, tree: Tree, rng: random.Random, ctx: RouteContext) -> str | None:
        raise NotImplementedError

    def on_expansion(self, node: Node, tree: Tree, model: str) -> None:
        """`model` is about to expand `node`."""

    def on_measurement(self, parent: Node, child: Node, model: str, gain: float, new_best: bool) -> None:
        """A candidate `model` proposed from `parent` was measured: its credited gain and whether
        it set a new best of the run."""


class SingleRouter(Router):
    def __init__(self, model: str):
        self.model = model
        self.name = f"single:{model}"

    def choose(self, node, tree, rng, ctx):
        return self.model if self.model in ctx.available() else None


class RoundRobin(Router):
    name = "round-robin"

    def __init__(self):
        self._turn = 0

    def choose(self, node, tree, rng, ctx):
        names = sorted(ctx.models)
        for _ in range(len(names)):
            name = names[self._turn % len(names)]
            self._turn += 1
            if name in ctx.available():
                return name
        return None


class PhaseRouter(Router):
    """The cheaper models in turn for the first `fraction` of the trial budget, then the
    strongest model (while its budget lasts, then the cheaper ones again)."""

    name = "phase"

    def __init__(self, fraction: float = 0.5):
        self.fraction = fraction
        self._cheap = RoundRobin()

    def choose(self, node, tree, rng, ctx):
        available = ctx.available()
        if not available:
            return None
        strongest = ctx.strongest(list(ctx.models))
        if ctx.trials_used >= self.fraction * ctx.trials_total and strongest in available:
            return strongest
        cheap = {n: p for n, p in ctx.models.items() if n != strongest}
        if not cheap:
            return strongest if strongest in available else None
        return self._cheap.choose(node, tree, rng, RouteContext(cheap, ctx.credit, ctx.trials_used, ctx.trials_total))


def _situation(node: Node, tree: Tree) -> tuple[str, bool]:
    """(depth bucket, whether the node's subtree is still improving: one of its last measured
    children beat it, or it has none yet)."""
    depth = "shallow" if node.depth <= 2 else "deep"
    children = [tree.nodes[c] for c in node.children[-4:]]
    latencies = [c.latency_s for c in children if c.latency_s is not None]
    improving = not latencies or node.latency_s is None or any(latency < node.latency_s for latency in latencies)
    return depth, improving


@dataclass
class BanditRouter(Router):
    """UCB on measured value per unit cost. An arm's value is the mean gain (log improvement
    over the parent, plus `new_best_bonus` per new best) of its expansions, divided by its
    cost relative to the dearest model plus `cost_floor` (so free models are not infinitely
    good). Statistics are kept per node situation (depth bucket, subtree improving) and pooled
    over situations until one has `min_situation_data` expansions. When `stagnation` measured
    candidates in a row set no new best, the strongest model takes the next expansion (then
    again after twice as many, and so on); a new best, whoever finds it, resets that, so
    cheaper models keep the search while they find gains."""

    exploration: float = 0.5
    cost_floor: float = 0.1
    new_best_bonus: float = 0.05
    stagnation: int = 8
    min_situation_data: int = 2
    name: str = "bandit"
    arms: dict = field(default_factory=dict)  # (situation, model) -> [expansions, value]
    pooled: dict = field(default_factory=dict)  # model -> [expansions, value]
    escalations: int = 0
    _situation_of: dict = field(default_factory=dict)  # node id -> situation at its last expansion

    def _stats(self, situation, model) -> tuple[int, float]:
        n, value = self.arms.get((situation, model), (0, 0.0))
        return (n, value) if n >= self.min_situation_data else tuple(self.pooled.get(model, (0, 0.0)))

    def on_expansion(self, node: Node, tree: Tree, model: str) -> None:
        situation = _situation(node, tree)
        self._situation_of[node.id] = situation
        for table, key in ((self.arms, (situation, model)), (self.pooled, model)):
            n, value = table.get(key, (0, 0.0))
            table[key] = (n + 1, value)

    def on_measurement(self, parent: Node, child: Node, model: str, gain: float, new_best: bool) -> None:
        reward = gain + (self.new_best_bonus if new_best else 0.0)
        situation = self._situation_of.get(parent.id)
        for table, key in ((self.arms, (situation, model)), (self.pooled, model)):
            n, value = table.get(key, (0, 0.0))
            table[key] = (n, value + reward)
        if new_best:
            self.escalations = 0

    def choose(self, node, tree, rng, ctx):
        available = ctx.available()
        if not available:
            return None
        if ctx.credit.since_new_best >= self.stagnation * 2 ** self.escalations:
            self.escalations += 1
            return ctx.strongest(available)
        situation = _situation(node, tree)
        dearest = max(ctx.cost(n) for n in ctx.models) or 1.0
        total = sum(self._stats(situation, n)[0] for n in available) + 1
        scores = {}
        for name in available:
            n, value = self._stats(situation, name)
            if n == 0:
                scores[name] = math.inf  # every model is tried once
            else:
                per_cost = (value / n) / (ctx.cost(name) / dearest + self.cost_floor)
                scores[name] = per_cost + self.exploration * math.sqrt(math.log(total) / n)
        # Ties (untried models) go to the cheaper one, then by name.
        return min(available, key=lambda n: (-scores[n], ctx.cost(n), n))


@dataclass
class ColtRouter(Router):
    """COLT's model-aware choice at a node: (1 - λ)·Q + λ·φ(model) + c·sqrt(ln N / n), with Q
    the model's mean normalized reward among the node's children, φ = 1 - cost/dearest cost
    (favours cheaper models), N the node's children and n the model's. The acting model may
    name the next model (a joint action in its answer); after `escalate_after` consecutive
    regressions of cheaper models (a child slower than its parent, as measured) the strongest
    model acts."""

    lam: float = 0.3
    exploration: float = 0.5
    escalate_after: int = 3
    name: str = "colt"
    asks_next_model: bool = True  # the engine asks models to name the next one
    regressions: int = 0
    strongest: str | None = None  # the model escalated to (bind)

    def bind(self, ctx: RouteContext) -> None:
        self.strongest = ctx.strongest(list(ctx.models))

    def on_measurement(self, parent: Node, child: Node, model: str, gain: float, new_best: bool) -> None:
        if model == self.strongest:
            self.regressions = 0
        elif child.latency_s is None or (parent.latency_s is not None and child.latency_s >= parent.latency_s):
            self.regressions += 1
        else:
            self.regressions = 0

    def choose(self, node, tree, rng, ctx):

        available = ctx.available()
        if not available:
            return None
        strongest = ctx.strongest(available)
        if self.regressions >= self.escalate_after:
            self.regressions = 0
            ctx.next_model_hint = None
            return strongest
        hint, ctx.next_model_hint = ctx.next_model_hint, None
        if hint in available:
            return hint
        dearest = max(ctx.cost(n) for n in ctx.models) or 1.0
        children = [tree.nodes[c] for c in node.children]
        total = len(children) + 1
        best, best_score = None, -math.inf
        for name in sorted(available):
            mine = [c for c in children if c.proposer == name]
            rewards = [normalize(tree, c.reward) if c.reward is not None else 0.0 for c in mine]
            q = sum(rewards) / len(rewards) if rewards else 0.5
            phi = 1.0 - ctx.cost(name) / dearest
            score = (1 - self.lam) * q + self.lam * phi + self.exploration * math.sqrt(math.log(total + 1) / (len(mine) + 1))
            if score > best_score:
                best, best_score = name, score
        return best


# {name: (factory, help)}; "single:MODEL" is the parameterized entry "single".
ROUTERS: dict[str, tuple[Callable[..., Router], str]] = {
    "bandit": (BanditRouter, "UCB on measured gain per unit cost, per node situation; the strongest model acts "
                             "after 8, 16, 32... measured candidates without a new best (default)"),
    "colt": (ColtRouter, "COLT: (1-λ)·Q + λ·φ(model) + c·sqrt(ln N/n), the acting LLM names the next model, "
                         "the strongest acts after 3 regressions of cheaper ones"),
    "phase": (PhaseRouter, "cheaper models in turn for the first half of the trials, then the strongest"),
    "round-robin": (RoundRobin, "each model in turn"),
    "single": (SingleRouter, "single:MODEL: one model does every expansion"),
}


def make_router(text: str, model_names: list[str]) -> Router:
    """A router by name ("single:MODEL" for one model); raises ValueError with a one-line reason."""
    name, _, argument = text.partition(":")
    if name not in ROUTERS or bool(argument) != (name == "single"):
        raise ValueError(f"unknown router {text!r}; known: {', '.join(router_names())}")
    if argument and argument not in model_names:
        raise ValueError(f"router {text}: {argument!r} is not one of the run's models ({', '.join(model_names)})")
    factory = ROUTERS[name][0]
    return factory(argument) if argument else factory()


def router_names() -> list[str]:
    return [("single:MODEL" if name == "single" else name) for name in ROUTERS]
