"""The search loop: ask the selector -> expand -> filter -> rank -> measure a batch -> tell.

Everything outside the tree is reached through the protocols below, so the loop runs with
fakes in tests. The steps of a round are public (`expand`, `filter`, `rank`, `measure`) and
return small dataclasses; a `Selector` (selector.py) decides what each round expands. The same
seed and the same measurements give the same run: all randomness comes from one seeded
`random.Random`. Every proposal and measurement is an event (events.py) for the observers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import DeviceUnavailable
from .budget import Budget
from .credit import Credit
from .events import MeasurementEvent, Observer, ProposalEvent
from .policies import PolicyConfig
from .proposal import Edit, Proposal, ProposalRequest, Proposer
from .routers import ModelProfile, RoundRobin, RouteContext
from .selector import Ask, Measured, Outcome, Selector, TreePolicySelector
from .tree import ROOT, Node, Tree

SAMPLE = "sample"  # what the tree and the statistics call a fresh sample of the design space


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
    credit: Credit = field(default_factory=Credit)  # per-model statistics


@dataclass(frozen=True)
class Proposed:
    """A valid edit's candidate, before we know whether it is new."""

    candidate: Any
    edit: Edit
    model: str  # the model credited with it (a fallback's own name for a fallback's edit)
    proposal: int | None  # the proposal event it came from; None for a fresh sample


@dataclass(frozen=True)
class Fresh:
    """A proposed candidate whose program was never measured."""

    proposed: Proposed
    key: Hashable


@dataclass(frozen=True)
class Pick:
    """A fresh candidate chosen for measurement, as a child of `parent`."""

    parent: Node
    fresh: Fresh
    predicted: float | None  # the cost model's score (None while it is untrained)
    rank: int  # its place among the picks of its ask; the child's prior is 1 / (1 + rank)


class SearchEngine:
    def __init__(self, space: Space, evaluator: Evaluator, proposers: dict[str, Proposer], budget: Budget,
                 seed: int = 0, config: SearchConfig | None = None, ranker: Ranker | None = None,
                 selector: Selector | None = None, hardware: dict | None = None,
                 observers: Sequence[Observer] = (), reference_latency_s: float | None = None,
                 profiles: dict[str, ModelProfile] | None = None):
        if not proposers:
            raise ValueError("at least one proposer is needed")
        self.space, self.evaluator, self.proposers = space, evaluator, proposers
        self.budget, self.config, self.ranker = budget, config or SearchConfig(), ranker
        self.credit = Credit()
        self.route = RouteContext(profiles or {n: ModelProfile(n, 0.0, 0.0) for n in proposers}, self.credit,
                                  trials_total=budget.trials)
        self.selector = selector or TreePolicySelector(RoundRobin(), self.config.policy)
        self.rng = random.Random(seed)
        self.hardware = hardware or {}
        self.observers = list(observers)
        self.tree = Tree()
        self.tree.reference_latency_s = reference_latency_s
        self.seen: set = set()
        self.invalid: dict[str, int] = {}
        self.duplicates: dict[str, int] = {}
        self._dry: dict[int, int] = {}
        self._proposals = 0  # proposal events so far; measurements name the proposal they came from
        self.selector.bind(self)

    def _emit(self, event) -> None:
        for observer in self.observers:
            observer.on_event(event)

    # -- the steps of a round ----------------------------------------------------------------

    def expand(self, ask: Ask) -> list[Proposed]:
        """The candidates of one expansion: fresh samples of the design space for a root ask
        without a model, else the valid edits of the model's proposal (and of its fallback's)."""
        if ask.model is None:
            return self._sample(ask.want)
        node, name = ask.node, ask.model
        request = ProposalRequest(node_id=node.id, candidate=node.candidate, knobs=self.space.knobs(node.candidate),
                                  history=self._history(node), k=self.config.proposals_per_expansion,
                                  rng=random.Random(self.rng.getrandbits(64)), hardware=self.hardware,
                                  preview=lambda changes: self.space.preview(node.candidate, changes),
                                  tried=self._tried(node),
                                  siblings=self._tried(self.tree.nodes[node.parent], skip=node.id, best=3)
                                  if node.parent not in (None, ROOT) else [],
                                  next_models=sorted(self.proposers) if self.selector.asks_next_model else [])
        started = time.perf_counter()
        proposal: Proposal = self.proposers[name].propose(request)
        seconds = time.perf_counter() - started
        if proposal.next_model in self.proposers:
            self.route.next_model_hint = proposal.next_model
        fell_back_to = proposal.fallback_name if proposal.fallback is not None else None
        out = self._accept(node, name, proposal, seconds, fell_back_to=fell_back_to)
        if proposal.fallback is not None:
            out += self._accept(node, proposal.fallback_name, proposal.fallback, 0.0, fallback_for=name)
        return out

    def filter(self, proposed: list[Proposed], taken: set) -> list[Fresh]:
        """The proposed candidates whose program was never measured (nor already taken this round)."""
        fresh = []
        for item in proposed:
            key = self.space.key(item.candidate)
            if key in self.seen or key in taken:
                self.duplicates[item.model] = self.duplicates.get(item.model, 0) + 1
                continue
            taken.add(key)
            fresh.append(Fresh(item, key))
        return fresh

    def rank(self, parent: Node, fresh: list[Fresh], want: int) -> list[Pick]:
        """The `want` most promising by the cost model (the proposers' order until it is trained)."""
        scores = self.ranker.score([f.proposed.candidate for f in fresh]) if self.ranker else None
        order = list(range(len(fresh)))
        if scores is not None:
            order.sort(key=lambda i: (-scores[i], i))
        return [Pick(parent, fresh[i], None if scores is None else scores[i], rank)
                for rank, i in enumerate(order[:want])]

    def measure(self, picks: list[Pick]) -> list[Measured]:
        """Measure picks as one batch; each becomes a child of its parent, backed up with its
        measured latency and credited to its model."""
        try:
            results = self.evaluator.measure([p.fresh.proposed.candidate for p in picks])
        except DeviceUnavailable as lost:  # keep what was measured before the device went away
            self._record(picks[:len(lost.results)], lost.results)
            raise
        return self._record(picks, results)

    # -- the round -----------------------------------------------------------------------------

    def round(self) -> None:
        want = min(self.config.batch_size, self.budget.remaining)
        asks = self.selector.ask(self, want)
        taken: set = set()
        planned: list[tuple[Ask, list[Pick]]] = []
        for ask in asks:
            if ask.model is not None and not self.route.models[ask.model].available():
                # Spent by an earlier ask of this round (a selector may ask for one model several
                # times): the node gets a fresh sample of the design space instead.
                ask = Ask(self.tree.root, None, ask.want)
            fresh = self.filter(self.expand(ask), taken)
            if not fresh:
                self._dried(ask.node)
                planned.append((ask, []))
                continue
            planned.append((ask, self.rank(ask.node, fresh, ask.want)))
        picks = [p for _, ps in planned for p in ps]
        measured = iter(self.measure(picks) if picks else [])
        self.selector.tell(self, [Outcome(ask, [next(measured) for _ in ps]) for ask, ps in planned])

    def run(self) -> SearchResult:
        dry_total = 0
        while not self.budget.done():
            before = self.budget.used_trials
            self.round()
            if self.budget.used_trials == before:
                dry_total += 1
                if dry_total >= self.config.max_dry_rounds:
                    return self._result("no new candidate in many rounds: the space looks exhausted")
            else:
                dry_total = 0
        return self._result(self.budget.stop_reason())

    # -- helpers ---------------------------------------------------------------------------------

    def _history(self, node: Node) -> list[dict]:
        return [{"node": n.id, "proposer": n.proposer, "edit": n.edit, "latency_s": n.latency_s}
                for n in self.tree.path(node.id) if n.id != ROOT]

    def _tried(self, node: Node, skip: int | None = None, best: int | None = None) -> list[dict]:
        children = [self.tree.nodes[c] for c in node.children if c != skip]
        if best is not None:
            children = sorted((c for c in children if c.latency_s is not None), key=lambda c: c.latency_s or 0.0)[:best]
        return [{"edit": c.edit, "latency_s": c.latency_s, "proposer": c.proposer} for c in children]

    def _sample(self, want: int) -> list[Proposed]:
        # Sample more than we measure once a ranker can pick the promising ones.
        count = want if self.ranker is None or not self.tree.measured() else max(want, self.config.proposals_per_expansion)
        edit = Edit({}, "fresh random sample of the design space")
        return [Proposed(c, edit, SAMPLE, None) for c in self.space.sample(max(count, 1), self.rng)]

    def _accept(self, node: Node, name: str, proposal: Proposal, seconds: float, fallback_for: str | None = None,
                fell_back_to: str | None = None) -> list[Proposed]:
        """Apply a proposal's edits; each valid one becomes a candidate credited to `name`."""
        self._proposals += 1
        out, invalid, repaired = [], list(proposal.rejected), []
        for edit in proposal.edits:
            candidate, reason = self.space.apply(node.candidate, edit.changes)
            if candidate is None:
                invalid.append({"changes": edit.changes, "reason": reason})
                continue
            out.append(Proposed(candidate, edit, name, self._proposals))
            # A structural change can make knobs of the old design space meaningless: the space
            # resets them and says so (the candidate's `repairs`), and the ledger keeps it.
            repairs = list(getattr(candidate, "repairs", ()))
            if repairs:
                repaired.append({"changes": edit.changes, "repairs": repairs})
        if invalid:
            self.invalid[name] = self.invalid.get(name, 0) + len(invalid)
        event = ProposalEvent(self._proposals, node.id, name, len(proposal.edits) + len(proposal.rejected), len(out),
                              invalid, proposal.cost.as_dict(), seconds, proposal.note, repaired=repaired,
                              log=proposal.log, fallback_for=fallback_for, fell_back_to=fell_back_to)
        self.credit.on_proposal(event)
        self._emit(event)
        return out

    def _dried(self, node: Node) -> None:
        """An expansion of `node` found nothing new; a node that keeps drying up stops expanding."""
        self._dry[node.id] = self._dry.get(node.id, 0) + 1
        if node.id != ROOT and self._dry[node.id] >= self.config.dry_rounds_to_exhaust:
            node.exhausted = True

    def _record(self, picks: list[Pick], results: list) -> list[Measured]:
        self.budget.spend(len(picks))
        first_trial = self.budget.used_trials - len(picks)
        measured, latencies = [], []
        for i, (pick, result) in enumerate(zip(picks, results)):
            item, parent = pick.fresh.proposed, pick.parent
            self.seen.add(pick.fresh.key)
            child = self.tree.add_child(parent.id, item.candidate, item.model, item.edit.changes, item.edit.rationale,
                                        1.0 / (1 + pick.rank))
            self.tree.record(child.id, result.latency_s, getattr(result, "error", None))
            latencies.append(result.latency_s)
            new_bests = self.credit.of(item.model).new_bests
            gain = self.credit.on_measurement(item.model, parent.latency_s, result.latency_s)
            measured.append(Measured(child, gain, self.credit.of(item.model).new_bests > new_bests))
            self._emit(MeasurementEvent(child.id, parent.id, item.model, item.proposal, pick.fresh.key,
                                        getattr(result, "run_secs", None), item.edit.changes, item.edit.rationale,
                                        result.latency_s, getattr(result, "error", None), first_trial + i + 1,
                                        pick.predicted))
        if self.ranker and picks:
            self.ranker.update([p.fresh.proposed.candidate for p in picks], latencies)
        return measured

    def _result(self, reason: str) -> SearchResult:
        return SearchResult(self.tree, self.tree.best(), self.budget.used_trials, reason, dict(self.invalid),
                            dict(self.duplicates), self.credit)
