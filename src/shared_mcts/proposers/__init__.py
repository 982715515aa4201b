"""Proposers ("models") by name. Every one implements `Proposer` (base.py): node in, K edits
and their cost out. Non-LLM: expert, mutate, greedy. LLMs: llm.py, one per model spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Edit, Proposal, ProposalCost, ProposalRequest, Proposer

__all__ = ["Edit", "Proposal", "ProposalCost", "ProposalRequest", "Proposer", "make_proposers", "PROPOSER_HELP",
           "LLMOptions", "DEFAULT_MODELS"]

PROPOSER_HELP = {
    "expert": "hardware-aware tiling rules (SIMD width, register file, L1, cores)",
    "mutate": "MetaSchedule's mutators, seeded",
    "greedy": "cost-model-ranked single-knob neighbours",
    "local:smollm2": "SmolLM2-135M-Instruct run by llama.cpp in this process (embedded, offline)",
    "local:PATH.gguf": "any GGUF model run by llama.cpp",
    "openai:MODEL": "any OpenAI-compatible endpoint (base URL and key variable from models.toml)",
}

DEFAULT_MODELS = "local:smollm2,expert,mutate"  # `tune` with no --models: works offline


@dataclass
class LLMOptions:
    cache_dirs: tuple = ()  # where answers are written (the run folder, a shared cache folder)
    replay_from: tuple = ()  # where answers are read from besides cache_dirs
    replay_only: bool = False  # --replay: never call a model; a prompt with no cached answer falls back
    journal: Any = None  # called with a record before every real LLM attempt (the run's ledger)


class Priced:
    """A non-LLM proposer with an explicit price per call and hard budgets: how a non-LLM
    stand-in plays a paid model. Every call is charged, and refused once a budget is spent."""

    def __init__(self, inner: Proposer, spec):
        from ..search.budget import CallBudget

        self.inner, self.spec, self.name = inner, spec, spec.name
        self.budget = CallBudget(spec.max_calls, None, spec.max_dollars)

    def propose(self, request: ProposalRequest) -> Proposal:
        import time

        refused = self.budget.admit(0, 0, self.spec.price_per_call)
        if refused:
            return Proposal([], note=refused)
        self.budget.charge(0, self.spec.price_per_call)
        started = time.perf_counter()
        proposal = self.inner.propose(request)
        proposal.cost = ProposalCost(calls=1, seconds=time.perf_counter() - started, dollars=self.spec.price_per_call)
        return proposal


def _builtin(name: str, space, ranker, hardware: dict) -> Proposer:
    from .expert import ExpertProposer
    from .greedy import GreedyProposer
    from .mutate import MutateProposer

    if name == "expert":
        return ExpertProposer(hardware)
    if name == "mutate":
        return MutateProposer(space)
    return GreedyProposer(space, ranker)


def workload_info(workload) -> dict:
    return {"name": workload.name, "description": workload.description, "shapes": workload.shapes,
            "dtype": workload.dtype, "flops": workload.flops}


def make_proposers(specs: list, space, ranker, hardware: dict, workload: Any = None,
                   llm: LLMOptions | None = None) -> dict[str, Proposer]:
    """One proposer per spec (llm.config.ModelSpec). LLM backends are created here, so a
    missing key or model file is reported before any measurement."""
    from ..llm.backends import make_backend
    from ..llm.cache import ReplayCache
    from ..llm.caller import ModelCaller
    from .llm import LLMProposer

    from ..llm.config import spec_from_text

    specs = [spec_from_text(s) if isinstance(s, str) else s for s in specs]
    llm = llm or LLMOptions()
    cache = None
    out: dict[str, Proposer] = {}
    for spec in specs:
        if not spec.is_llm:
            out[spec.name] = Priced(_builtin(spec.model, space, ranker, hardware), spec)
            continue
        if cache is None:
            cache = ReplayCache(write_to=[Path(p) for p in llm.cache_dirs], read_from=[Path(p) for p in llm.replay_from])
        backend = None if llm.replay_only else make_backend(spec)
        fallback = None if spec.fallback == "none" else _builtin(spec.fallback, space, ranker, hardware)
        caller = ModelCaller(spec, backend, cache=cache, replay_only=llm.replay_only, journal=llm.journal)
        out[spec.name] = LLMProposer(spec.name, caller, workload_info(workload), lambda c: c.mod.script(), fallback,
                                     small_schema=spec.uses_small_schema, max_edits=spec.max_edits,
                                     script_chars=spec.script_limit)
    return out


def model_profiles(specs: list, proposers: dict[str, Proposer]) -> dict:
    """What routers know of each model: strength, prior cost, whether its budgets allow a call."""
    from ..search.routers import ModelProfile

    def available(proposer):
        budget = getattr(proposer, "budget", None) or getattr(getattr(proposer, "caller", None), "budget", None)
        return (lambda: not budget.spent()) if budget is not None else (lambda: True)

    return {s.name: ModelProfile(s.name, s.rank, s.expected_dollars(), available(proposers[s.name])) for s in specs}
