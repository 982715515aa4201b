"""Fakes for the pure search core: a 2-D grid "schedule space" with a known optimum."""

from __future__ import annotations

from dataclasses import dataclass

from shared_mcts.search.proposal import Edit, Proposal, ProposalCost


@dataclass
class FakeMeasurement:
    latency_s: float | None
    error: str | None = None


class GridSpace:
    """Candidates are (x, y) with 0 <= x, y < size; knobs "x" and "y"."""

    def __init__(self, size: int = 16):
        self.size = size

    def sample(self, count, rng):
        return [(rng.randrange(self.size), rng.randrange(self.size)) for _ in range(count)]

    def knobs(self, candidate):
        return {"x": candidate[0], "y": candidate[1]}

    def apply(self, candidate, changes):
        x, y = changes.get("x", candidate[0]), changes.get("y", candidate[1])
        if set(changes) - {"x", "y"}:
            return None, f"unknown knob {sorted(set(changes) - {'x', 'y'})[0]}"
        if not (0 <= x < self.size and 0 <= y < self.size):
            return None, "out of range"
        return (x, y), None

    def key(self, candidate):
        return candidate

    def preview(self, candidate, changes):
        return None  # no structure: every candidate has the same knobs


class GridEvaluator:
    """Latency grows with the distance to (11, 5); cells in `broken` fail to build."""

    def __init__(self, broken=()):
        self.calls: list[list] = []
        self.broken = set(broken)

    def measure(self, candidates):
        self.calls.append(list(candidates))
        return [FakeMeasurement(None, "build: broken") if c in self.broken
                else FakeMeasurement(1e-3 * (1 + (c[0] - 11) ** 2 + (c[1] - 5) ** 2)) for c in candidates]

    @property
    def measured(self):
        return [c for batch in self.calls for c in batch]


class StepProposer:
    """Moves one knob by ±1..2; with invalid=True, also proposes out-of-range and unknown knobs."""

    def __init__(self, name="step", invalid=False):
        self.name = name
        self.invalid = invalid
        self.requests = []

    def propose(self, request):
        self.requests.append(request)
        edits = []
        for _ in range(request.k):
            knob = request.rng.choice(["x", "y"])
            edits.append(Edit({knob: request.knobs[knob] + request.rng.choice([-2, -1, 1, 2])}, "step"))
        if self.invalid:
            edits += [Edit({"x": -5}, "bad"), Edit({"z": 1}, "bad")]
        return Proposal(edits, ProposalCost(calls=1, seconds=0.01))


class StuckProposer:
    """Always proposes the node itself: every proposal is a duplicate."""

    name = "stuck"

    def propose(self, request):
        return Proposal([Edit(dict(request.knobs), "same")])


class Records:
    """An observer keeping every event of a search as its ledger record (a dict)."""

    def __init__(self, out: list):
        self.out = out

    def on_event(self, event):
        self.out.append(event.as_record())
