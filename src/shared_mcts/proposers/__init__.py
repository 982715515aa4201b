"""Proposers ("models") by name. Every one implements `Proposer` (base.py): node in, K edits
and their cost out. LLM proposers join here in the next stage."""

from __future__ import annotations

from ..errors import UserError
from .base import Edit, Proposal, ProposalCost, ProposalRequest, Proposer

__all__ = ["Edit", "Proposal", "ProposalCost", "ProposalRequest", "Proposer", "make_proposers", "PROPOSER_HELP"]

PROPOSER_HELP = {
    "expert": "hardware-aware tiling rules (SIMD width, register file, L1, cores)",
    "mutate": "MetaSchedule's mutators, seeded",
    "greedy": "cost-model-ranked single-knob neighbours",
}


def parse_models(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--models: nothing given")
    for name in names:
        if name not in PROPOSER_HELP:
            raise UserError(f"unknown model {name!r}; known: {', '.join(PROPOSER_HELP)}")
    return list(dict.fromkeys(names))


def make_proposers(names: list[str], space, ranker, hardware: dict) -> dict[str, Proposer]:
    from .expert import ExpertProposer
    from .greedy import GreedyProposer
    from .mutate import MutateProposer

    factories = {
        "expert": lambda: ExpertProposer(hardware),
        "mutate": lambda: MutateProposer(space),
        "greedy": lambda: GreedyProposer(space, ranker),
    }
    return {name: factories[name]() for name in names}
