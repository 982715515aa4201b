"""Proposers ("models") by name. Every one implements the search core's `Proposer`
(search/proposal.py): node in, K edits and their cost out.

Non-LLM proposers are registered in `BUILTIN` ({name: (factory, help)}): adding one is one class
plus one line there. LLMs are `LLMProposer`s (proposers/llm/), one per model spec, run by a
backend of llm/backends.py's registry. A user may also pass `Proposer` instances to `tune()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..llm.backends import BACKEND_DEFAULTS, BACKENDS, make_backend, prompt_settings
from ..llm.cache import ReplayCache
from ..llm.caller import ModelCaller
from ..models import CallBudget, ModelSpec, parse_model_specs, spec_from_text
from ..models.spec import NO_FALLBACK
from ..search.proposal import Proposal, ProposalCost, ProposalRequest, Proposer
from ..search.routers import ModelProfile
from .expert import ExpertProposer
from .greedy import GreedyProposer
from .llm import LLMProposer
from .mutate import MutateProposer


@dataclass(frozen=True)
class BuiltinContext:
    """What a non-LLM proposer may be built from."""

    space: Any  # space.space.ScheduleSpace
    ranker: Any  # costmodel.XGBRanker
    hardware: dict  # HostInfo.as_dict()


BUILTIN: dict[str, tuple[Callable[[BuiltinContext], Proposer], str]] = {
    "expert": (lambda c: ExpertProposer(c.hardware),
               "hardware-aware rules: register micro-kernels from SIMD width, registers, FMA units, caches, cores"),
    "mutate": (lambda c: MutateProposer(c.space), "MetaSchedule's mutators, seeded"),
    "greedy": (lambda c: GreedyProposer(c.space, c.ranker), "cost-model-ranked single-knob neighbours"),
}

DEFAULT_MODELS = "local:smollm2,expert,mutate"  # `tune` with no models: works offline


def proposer_help() -> dict[str, str]:
    """What `--models` accepts, from the registries."""
    out = {name: text for name, (_, text) in BUILTIN.items()}
    for backend in BACKENDS.values():
        out.update(backend.help)
    return out


def model_specs(models: str | Sequence) -> list[ModelSpec]:
    """`models` as given to tune or bench: a comma list or models.toml path, or a list of spec
    texts and ModelSpecs. Names are checked against the proposer and backend registries."""
    if isinstance(models, str):
        return parse_model_specs(models, BUILTIN, BACKEND_DEFAULTS)
    return [m if isinstance(m, ModelSpec) else spec_from_text(m, BUILTIN, BACKEND_DEFAULTS) for m in models]


@dataclass
class LLMOptions:
    cache_dirs: tuple = ()  # where answers are written (the run folder, a shared cache folder)
    replay_from: tuple = ()  # where answers are read from besides cache_dirs
    replay_only: bool = False  # --replay: never call a model; a prompt with no cached answer falls back
    journal: Any = None  # called with a record before every real LLM attempt (the run's ledger)


class Priced:
    """A non-LLM proposer with an explicit price per call and hard budgets: how a non-LLM
    stand-in plays a paid model. Every call is charged, and refused once a budget is spent."""

    def __init__(self, inner: Proposer, spec: ModelSpec):
        self.inner, self.spec, self.name = inner, spec, spec.name
        self.budget = CallBudget(spec.max_calls, None, spec.max_dollars)

    def propose(self, request: ProposalRequest) -> Proposal:
        refused = self.budget.admit(0, 0, self.spec.price_per_call)
        if refused:
            return Proposal([], note=refused)
        self.budget.charge(0, self.spec.price_per_call)
        started = time.perf_counter()
        proposal = self.inner.propose(request)
        proposal.cost = ProposalCost(calls=1, seconds=time.perf_counter() - started, dollars=self.spec.price_per_call)
        return proposal


def workload_info(workload) -> dict:
    return {"name": workload.name, "description": workload.description, "shapes": workload.shapes,
            "dtype": workload.dtype, "flops": workload.flops}


def make_proposers(specs: Sequence, space, ranker, hardware: dict, workload: Any = None,
                   llm: LLMOptions | None = None) -> dict[str, Proposer]:
    """One proposer per spec (ModelSpecs or their texts). LLM backends are created here, so a
    missing key or model file is reported before any measurement."""
    specs = model_specs(specs)
    context = BuiltinContext(space, ranker, hardware)
    llm = llm or LLMOptions()
    cache = None
    out: dict[str, Proposer] = {}
    for spec in specs:
        if not spec.is_llm:
            out[spec.name] = Priced(BUILTIN[spec.model][0](context), spec)
            continue
        if cache is None:
            cache = ReplayCache(write_to=[Path(p) for p in llm.cache_dirs], read_from=[Path(p) for p in llm.replay_from])
        backend = None if llm.replay_only else make_backend(spec)
        fallback = None if spec.fallback == NO_FALLBACK else BUILTIN[spec.fallback][0](context)
        caller = ModelCaller(spec, backend, cache=cache, replay_only=llm.replay_only, journal=llm.journal)
        small_schema, script_chars = prompt_settings(spec)
        out[spec.name] = LLMProposer(spec.name, caller, workload_info(workload), lambda c: c.mod.script(), fallback,
                                     small_schema=small_schema, max_edits=spec.max_edits, script_chars=script_chars)
    return out


def budget_of(proposer: Proposer) -> CallBudget | None:
    """The call budget that limits a proposer, if it has one (priced stand-ins and LLMs do)."""
    if isinstance(proposer, Priced):
        return proposer.budget
    if isinstance(proposer, LLMProposer):
        return proposer.caller.budget
    return None


def model_profiles(specs: list[ModelSpec], proposers: dict[str, Proposer]) -> dict[str, ModelProfile]:
    """What routers know of each model: strength, prior cost, whether its budgets allow a call.
    A proposer given as an instance, without a spec, is free and of strength 0."""
    by_name = {s.name: s for s in specs}
    profiles = {}
    for name, proposer in proposers.items():
        budget = budget_of(proposer)
        available = (lambda budget=budget: not budget.spent()) if budget is not None else (lambda: True)
        spec = by_name.get(name)
        profiles[name] = ModelProfile(name, spec.rank if spec else 0.0, spec.expected_dollars() if spec else 0.0,
                                      available)
    return profiles
