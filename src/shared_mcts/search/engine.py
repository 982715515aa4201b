"""The search loop: select -> propose -> filter -> measure a batch -> back up.

Everything outside the tree is reached through the protocols below, so the loop runs with
fakes in tests. The same seed and the same measurements give the same run: all randomness
comes from one seeded `random.Random`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Protocol

from ..errors import DeviceUnavailable
from ..proposers.base import Edit, Proposal, ProposalRequest, Proposer
from .budget import Budget
from .credit import Credit
from .policies import PolicyConfig, can_expand, select
from .routers import ModelProfile, RouteContext, RoundRobin, Router
from .tree import ROOT, Node, Tree


class Space(Protocol):
    def sample(self, count: int, rng: random.Random) -> list[Any]: ...
    def knobs(self, candidate: Any) -> dict: ...
    def apply(self, candidate: Any, changes: dict) -> tuple[Any | None, str | None]: ...
    def key(self, candidate: Any) -> Hashable: ...
    # The knobs of the design space that structural `changes` would select (tile knobs with the
    # values an edit would carry over), so a proposer can change structure and tiles in one edit;
    # None if the changes select no design space.
    def preview(self, candidate: Any, changes: dict) -> dict | None: ...


class Evaluator(Protocol):
    def measure(self, candidates: list[Any]) -> list[Any]: ...  # items have .latency_s and .error


class Ranker(Protocol):
    def score(self, candidates: list[Any]) -> list[float] | None: ...  # None while untrained
    def update(self, candidates: list[Any], latencies: list[float | None]) -> None: ...


@dataclass
class SearchConfig:
    proposals_per_expansion: int = 8  # K edits asked of a proposer
    batch_size: int = 4  # candidates measured per round (built in parallel)
    initial_samples: int = 4  # fresh design-space samples measured first
    dry_rounds_to_exhaust: int = 3  # a node whose expansions found nothing new this often stops expanding
    max_dry_rounds: int = 200  # safety net: the whole space looks exhausted
    policy: PolicyConfig = PolicyConfig()


@dataclass
class SearchResult:
    tree: Tree
    best: Node | None
    trials: int
    stop_reason: str
    invalid_edits: dict[str, int]
    duplicate_edits: dict[str, int]
    credit: dict = None  # per model: Credit.as_dict()


Event = Callable[[dict], None]


class SearchEngine:
    def __init__(self, space: Space, evaluator: Evaluator, proposers: dict[str, Proposer], budget: Budget,
                 seed: int = 0, config: SearchConfig | None = None, ranker: Ranker | None = None,
                 router: Router | None = None, hardware: dict | None = None, on_event: Event | None = None,
                 reference_latency_s: float | None = None, profiles: dict[str, ModelProfile] | None = None):
        if not proposers:
            raise ValueError("at least one proposer is needed")
        self.space, self.evaluator, self.proposers = space, evaluator, proposers
        self.budget, self.config, self.ranker = budget, config or SearchConfig(), ranker
        self.router = router or RoundRobin()
        self.credit = Credit()
        self.route = RouteContext(profiles or {n: ModelProfile(n, 0.0, 0.0) for n in proposers}, self.credit,
                                  trials_total=budget.trials)
        if hasattr(self.router, "strongest"):
            self.router.strongest = self.route.strongest(list(self.route.models))
        self.rng = random.Random(seed)
        self.hardware = hardware or {}
        self.on_event = on_event or (lambda event: None)
        self.tree = Tree()
        self.tree.reference_latency_s = reference_latency_s
        self.seen: set = set()
        self.invalid: dict[str, int] = {}
        self.duplicates: dict[str, int] = {}
        self._dry: dict[int, int] = {}
        self._proposals = 0  # proposal events so far; measurements name the proposal they came from

    # -- one round -------------------------------------------------------------------------

    def _history(self, node: Node) -> list[dict]:
        return [{"node": n.id, "proposer": n.proposer, "edit": n.edit, "latency_s": n.latency_s}
                for n in self.tree.path(node.id) if n.id != ROOT]

    def _expand_root(self, want: int) -> list[tuple[Any, Edit, str, int | None]]:
        # Sample more than we measure once a ranker can pick the promising ones.
        count = want if self.ranker is None or not self.tree.measured() else max(want, self.config.proposals_per_expansion)
        fresh = self.space.sample(max(count, 1), self.rng)
        return [(c, Edit({}, "fresh random sample of the design space"), "sample", None) for c in fresh]

    def _tried(self, node: Node, skip: int | None = None, best: int | None = None) -> list[dict]:
        children = [self.tree.nodes[c] for c in node.children if c != skip]
        if best is not None:
            children = sorted((c for c in children if c.latency_s is not None), key=lambda c: c.latency_s)[:best]
        return [{"edit": c.edit, "latency_s": c.latency_s, "proposer": c.proposer} for c in children]

    def _expand(self, node: Node, name: str) -> list[tuple[Any, Edit, str, int | None]]:
        request = ProposalRequest(node_id=node.id, candidate=node.candidate, knobs=self.space.knobs(node.candidate),
                                  history=self._history(node), k=self.config.proposals_per_expansion,
                                  rng=random.Random(self.rng.getrandbits(64)), hardware=self.hardware,
                                  preview=lambda changes: self.space.preview(node.candidate, changes),
                                  tried=self._tried(node),
                                  siblings=self._tried(self.tree.nodes[node.parent], skip=node.id, best=3)
                                  if node.parent not in (None, ROOT) else [],
                                  next_models=sorted(self.proposers) if getattr(self.router, "asks_next_model", False)
                                  else [])
        started = time.perf_counter()
        proposal: Proposal = self.proposers[name].propose(request)
        seconds = time.perf_counter() - started
        if proposal.next_model in self.proposers:
            self.route.next_model_hint = proposal.next_model
        out = self._accept(node, name, proposal, seconds)
        if proposal.fallback is not None:
            out += self._accept(node, proposal.fallback_name, proposal.fallback, 0.0, via=name)
        return out

    def _accept(self, node: Node, name: str, proposal: Proposal, seconds: float, via: str | None = None):
        """Apply a proposal's edits; each valid one becomes a candidate credited to `name`."""
        self._proposals += 1
        cost = proposal.cost
        self.credit.on_proposal(name, cost.calls, cost.dollars, cost.seconds, cost.prompt_tokens + cost.completion_tokens)
        out, invalid, repaired = [], list(proposal.rejected), []
        for edit in proposal.edits:
            candidate, reason = self.space.apply(node.candidate, edit.changes)
            if candidate is None:
                invalid.append({"changes": edit.changes, "reason": reason})
            else:
                out.append((candidate, edit, name, self._proposals))
                # A structural change can make knobs of the old design space meaningless: the
                # space resets them and says so, and the ledger keeps what was reset.
                if getattr(candidate, "repairs", ()):
                    repaired.append({"changes": edit.changes, "repairs": list(candidate.repairs)})
        if invalid:
            self.invalid[name] = self.invalid.get(name, 0) + len(invalid)
        event = {"event": "proposal", "proposal": self._proposals, "node": node.id, "proposer": name,
                 "edits": len(proposal.edits) + len(proposal.rejected), "valid": len(out), "invalid": invalid,
                 "cost": proposal.cost.as_dict(), "seconds": seconds, "note": proposal.note}
        if repaired:
            event["repaired"] = repaired
        if proposal.log:
            event["log"] = proposal.log
        if via:
            event["fallback_for"] = via
        self.on_event(event)
        return out

    def _round(self) -> None:
        want = min(self.config.batch_size, self.budget.remaining)
        node = select(self.tree, self.config.policy)
        if node.id == ROOT and not self.tree.root.children:
            want = min(max(self.config.initial_samples, 1), self.budget.remaining)
        model = None
        if node.id != ROOT and can_expand(node):
            self.route.trials_used = self.budget.used_trials
            model = self.router.choose(node, self.tree, self.rng, self.route)
        if model is None:  # the root, a node that cannot grow, or every model's budget spent
            node = self.tree.root
            proposals = self._expand_root(want)
        else:
            if hasattr(self.router, "on_expansion"):
                self.router.on_expansion(node, self.tree, model)
            proposals = self._expand(node, model)

        fresh = self._fresh(proposals, set())
        if not fresh:
            self._dry[node.id] = self._dry.get(node.id, 0) + 1
            if node.id != ROOT and self._dry[node.id] >= self.config.dry_rounds_to_exhaust:
                node.exhausted = True
            return
        self._measure_and_record([(node, item, predicted, rank)
                                  for rank, (item, predicted) in enumerate(self._ranked(fresh, want))])

    # -- the pieces of a round, shared with other drivers (search/abmcts.py) --------------------

    def _fresh(self, proposals, taken: set) -> list[tuple]:
        """Proposals whose program was never measured (nor already taken this round)."""
        fresh = []
        for candidate, edit, name, proposal_id in proposals:
            key = self.space.key(candidate)
            if key in self.seen or key in taken:
                self.duplicates[name] = self.duplicates.get(name, 0) + 1
                continue
            taken.add(key)
            fresh.append((candidate, edit, key, name, proposal_id))
        return fresh

    def _ranked(self, fresh: list[tuple], want: int) -> list[tuple[tuple, float | None]]:
        """The `want` most promising by the cost model (the proposers' order until it is trained)."""
        scores = self.ranker.score([f[0] for f in fresh]) if self.ranker else None
        order = list(range(len(fresh)))
        if scores is not None:
            order.sort(key=lambda i: (-scores[i], i))
        return [(fresh[i], None if scores is None else scores[i]) for i in order[:want]]

    def _measure_and_record(self, picks: list[tuple[Node, tuple, float | None, int]]) -> list[Node]:
        """Measure (parent, candidate item, predicted score, rank) picks as one batch; each
        becomes a child of its parent, backed up with its measured latency and credited."""
        try:
            results = self.evaluator.measure([item[0] for _, item, _, _ in picks])
        except DeviceUnavailable as lost:  # keep what was measured before the device went away
            self._record(picks[:len(lost.results)], lost.results)
            raise
        return self._record(picks, results)

    def _record(self, picks: list[tuple[Node, tuple, float | None, int]], results: list) -> list[Node]:
        self.budget.spend(len(picks))
        first_trial = self.budget.used_trials - len(picks)
        children, latencies = [], []
        for i, ((parent, (candidate, edit, key, name, proposal_id), predicted, rank), result) in \
                enumerate(zip(picks, results)):
            self.seen.add(key)
            child = self.tree.add_child(parent.id, candidate, name, edit.changes, edit.rationale, 1.0 / (1 + rank))
            self.tree.record(child.id, result.latency_s, getattr(result, "error", None))
            latencies.append(result.latency_s)
            children.append(child)
            new_bests = self.credit.of(name).new_bests
            gain = self.credit.on_measurement(name, parent.latency_s, result.latency_s)
            if hasattr(self.router, "on_measurement") and parent.id != ROOT:
                self.router.on_measurement(parent, child, name, gain, self.credit.of(name).new_bests > new_bests)
            self.on_event({"event": "measurement", "node": child.id, "parent": parent.id, "proposer": name,
                           "proposal": proposal_id, "key": key,
                           "run_secs": getattr(result, "run_secs", None),
                           "edit": edit.changes, "rationale": edit.rationale, "latency_s": result.latency_s,
                           "error": getattr(result, "error", None), "trial": first_trial + i + 1,
                           "predicted_score": predicted})
        if self.ranker and picks:
            self.ranker.update([item[0] for _, item, _, _ in picks], latencies)
        return children

    def run(self) -> SearchResult:
        dry_total = 0
        while not self.budget.done():
            before = self.budget.used_trials
            self._round()
            if self.budget.used_trials == before:
                dry_total += 1
                if dry_total >= self.config.max_dry_rounds:
                    return self._result("no new candidate in many rounds: the space looks exhausted")
            else:
                dry_total = 0
        return self._result(self.budget.stop_reason())

    def _result(self, reason: str) -> SearchResult:
        return SearchResult(self.tree, self.tree.best(), self.budget.used_trials, reason, dict(self.invalid),
                            dict(self.duplicates), self.credit.as_dict())
