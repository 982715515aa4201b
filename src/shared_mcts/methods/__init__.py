"""Tuning methods by name, for `bench --methods`: `get_method("metaschedule")` etc.

`METHODS` is the registry, {name: (factory, help)}: adding a method is one class plus one line
there. A name may carry an argument (`mcts-single:MODEL`, `shared:ROUTER`) and, for methods
that search a design space, an `@SPACE` suffix (`mcts@stock`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import UserError
from ..models import ModelSpec
from ..proposers import model_specs
from ..search.selection import check_selector
from ..space.space import SPACES
from .base import Method, MethodContext, MethodResult
from .mcts import MCTS
from .metaschedule import CONFIGS as METASCHEDULE_CONFIGS
from .metaschedule import MetaSchedule
from .oneshot import ExpertOneShot
from .untuned import Untuned
from .vendor import VendorAnchor

__all__ = ["Method", "MethodContext", "MethodResult", "METHODS", "ANCHORS", "get_method", "method_help",
           "with_space"]

DEFAULT_MCTS_MODELS = "expert,mutate"
DEFAULT_SPACE = "widened"


@dataclass(frozen=True)
class MethodArgs:
    name: str  # as given, suffixes included
    argument: str  # what follows NAME: (the model of mcts-single, the router of shared), or ""
    space: str  # the design spaces a searching method searches
    models: list[ModelSpec] = field(default_factory=list)  # bench --models


def _mcts_single(args: MethodArgs) -> Method:
    known = {m.name: m for m in args.models}  # a models file's specs, by name
    spec = known.get(args.argument) or model_specs([args.argument])[0]
    return MCTS(args.name, [spec], router=f"single:{spec.name}", space=args.space)


def _shared(args: MethodArgs) -> Method:
    names = [m.name for m in args.models]
    if len(names) < 2:
        raise UserError(f"method {args.name}: give the shared tree two or more models")
    try:
        check_selector(args.argument, names)
    except ValueError as e:
        raise UserError(str(e)) from None
    return MCTS(args.name, list(args.models), router=args.argument, space=args.space)


def _metaschedule(config_name: str) -> Callable[[MethodArgs], Method]:
    return lambda args: MetaSchedule(args.name, METASCHEDULE_CONFIGS[config_name], space=args.space)


# {name: (factory, help)}; searching methods take @SPACE, names ending in ":" take an argument.
METHODS: dict[str, tuple[Callable[[MethodArgs], Method], str]] = {
    "untuned": (lambda args: Untuned(), "TVM's build of the workload with no schedule"),
    "expert-oneshot": (lambda args: ExpertOneShot(args.name),
                       "the one schedule the expert rules pick from the hardware facts in the micro-kernel space, "
                       "no search"),
    "metaschedule": (_metaschedule("metaschedule"),
                     "MetaSchedule for small budgets: evolutionary search, 8 candidates per iteration, "
                     "XGBoost trained from the first sample (no random warm-up)"),
    "metaschedule-stock": (_metaschedule("metaschedule-stock"),
                           "stock MetaSchedule: 64 candidates per iteration, XGBoost scores random below 100 samples"),
    "metaschedule-warm0": (_metaschedule("metaschedule-warm0"),
                           "stock MetaSchedule (64 per iteration) with the XGBoost random warm-up turned off"),
    "random": (_metaschedule("random"), "random valid samples of the design space (MetaSchedule's replay-trace)"),
    "mcts": (lambda args: MCTS(args.name, args.models or model_specs(DEFAULT_MCTS_MODELS), space=args.space),
             f"our MCTS over the models given by --models (default {DEFAULT_MCTS_MODELS}), round-robin"),
    "mcts-single:": (_mcts_single, "mcts-single:MODEL: our MCTS with one model doing every expansion "
                                   "(e.g. mcts-single:local:smollm2)"),
    "shared:": (_shared, "shared:ROUTER: one tree shared by all --models, routed by ROUTER (see tune --router)"),
    "numpy": (lambda args: VendorAnchor("numpy", "numpy"), "vendor anchor: numpy / OpenBLAS"),
    "torch": (lambda args: VendorAnchor("torch", "torch"), "vendor anchor: PyTorch / oneDNN (needs the [torch] extra)"),
}
ANCHORS = ("numpy", "torch")  # added to every bench unless --no-anchors
SPACELESS = ("untuned", "expert-oneshot", *ANCHORS)  # methods that search no design space


def method_help() -> dict[str, str]:
    return {(name + "ARG" if name.endswith(":") else name): text for name, (_, text) in METHODS.items()}


def with_space(name: str, space: str) -> str:
    """`name` searching `space` unless it names its own space or searches none (widened: unchanged)."""
    if space == DEFAULT_SPACE or "@" in name or name in SPACELESS:
        return name
    return f"{name}@{space}"


def get_method(name: str, models: list | None = None) -> Method:
    """The method `name` (`NAME[:ARG][@SPACE]`); `models`: bench --models (ModelSpecs or their texts)."""
    base, _, space = name.partition("@")
    if space and space not in SPACES:
        raise UserError(f"method {name}: unknown space {space!r}; use one of {', '.join(SPACES)}")
    if space and base in SPACELESS:
        raise UserError(f"method {name}: {base} searches no design space, so it takes no @{space}")
    key, argument = (base, "") if base in METHODS else (base.split(":", 1)[0] + ":", base.partition(":")[2])
    if key not in METHODS or (key.endswith(":") and not argument):
        known = ", ".join(method_help())
        raise UserError(f"unknown method {name!r}; known: {known}")
    specs = model_specs(models) if models else []
    method = METHODS[key][0](MethodArgs(name, argument, space or DEFAULT_SPACE, specs))
    method.name = name
    return method
