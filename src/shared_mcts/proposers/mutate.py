"""`mutate`: MetaSchedule's own mutators (tile size, compute location, unroll, parallel) with
their CPU probabilities, seeded. Each mutated trace is read back as a knob edit."""

from __future__ import annotations

from ..search.proposal import Edit, Proposal, ProposalRequest


class MutateProposer:
    name = "mutate"

    def __init__(self, space):
        self.space = space
        probs = dict(space.ctx.space_generator.mutator_probs)
        self.mutators = list(probs)
        self.weights = [float(probs[m]) for m in self.mutators]

    def propose(self, request: ProposalRequest) -> Proposal:
        from tvm.s_tir.meta_schedule import _ffi_api  # TVM: loaded on use (seconds to import)

        candidate = request.candidate
        edits, tries, unchanged = [], 0, 0
        while len(edits) < request.k and tries < 4 * request.k:
            tries += 1
            mutator = request.rng.choices(self.mutators, weights=self.weights)[0]
            mutated = _ffi_api.MutatorApply(mutator, candidate.trace, request.rng.randrange(1, 2**31 - 1))
            if mutated is None:
                continue
            values = self.space.values_from_trace(candidate.space, mutated)
            changes = {k: v for k, v in values.items() if v is not None and v != candidate.values.get(k)}
            if not changes:
                unchanged += 1  # e.g. MutateParallel: changes an annotation, not a decision
                continue
            edits.append(Edit({k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()},
                              f"MetaSchedule {type(mutator).__name__}"))
        note = f"{unchanged} mutation(s) changed no knob" if unchanged else ""
        return Proposal(edits, note=note)
