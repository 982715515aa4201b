"""`greedy`: draw a neighbourhood of single-knob changes around the node and keep the K the
cost model likes best (random order, said so, while the cost model is untrained)."""

from __future__ import annotations

from ..search.proposal import Edit, Proposal, ProposalRequest
from ..space.knobs import random_value


class GreedyProposer:
    name = "greedy"

    def __init__(self, space, ranker, neighbourhood: int = 32):
        self.space = space
        self.ranker = ranker
        self.neighbourhood = neighbourhood

    def propose(self, request: ProposalRequest) -> Proposal:
        names = sorted(request.knobs)
        neighbours = []
        for _ in range(self.neighbourhood):
            knob = request.knobs[request.rng.choice(names)]
            value = random_value(knob, request.rng)
            if value is None:
                continue
            changes = {knob.name: list(value) if isinstance(value, tuple) else value}
            candidate, _ = self.space.apply(request.candidate, changes)
            if candidate is not None:
                neighbours.append((changes, candidate))
        scores = self.ranker.score([c for _, c in neighbours]) if self.ranker is not None else None
        if scores is None:
            chosen, note = neighbours[: request.k], "cost model untrained: random neighbours"
        else:
            order = sorted(range(len(neighbours)), key=lambda i: -scores[i])
            chosen, note = [neighbours[i] for i in order[: request.k]], ""
        return Proposal([Edit(changes, "cost-model-ranked neighbour") for changes, _ in chosen], note=note)
