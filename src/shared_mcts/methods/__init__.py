"""Tuning methods by name. `get_method("metaschedule")` etc.; see `METHOD_HELP`."""

from __future__ import annotations

from ..errors import UserError
from .base import Method, MethodContext, MethodResult
from .metaschedule import CONFIGS as METASCHEDULE_CONFIGS
from .metaschedule import MetaSchedule
from .untuned import Untuned
from .vendor import VendorAnchor

__all__ = ["Method", "MethodContext", "MethodResult", "get_method", "METHOD_HELP", "ANCHORS"]

METHOD_HELP = {
    "untuned": "TVM's build of the workload with no schedule",
    "metaschedule": "MetaSchedule for small budgets: evolutionary search, 8 candidates per iteration, "
                    "XGBoost trained from the first sample (no random warm-up)",
    "metaschedule-stock": "stock MetaSchedule: 64 candidates per iteration, XGBoost scores random below 100 samples",
    "metaschedule-warm0": "stock MetaSchedule (64 per iteration) with the XGBoost random warm-up turned off",
    "random": "random valid samples of the MetaSchedule design space (replay-trace)",
    "mcts": "our MCTS over the models given by --models (default expert,mutate)",
    "expert-oneshot": "the one schedule the expert rules pick from the hardware facts in the micro-kernel space, no search",
    "mcts-single:MODEL": "our MCTS with one model doing every expansion (e.g. mcts-single:local:smollm2)",
    "shared:ROUTER": "one tree shared by all --models, routed by bandit, colt, phase, round-robin, single:MODEL or abmcts",
    "numpy": "vendor anchor: numpy / OpenBLAS",
    "torch": "vendor anchor: PyTorch / oneDNN (needs the [torch] extra)",
}
ANCHORS = ("numpy", "torch")
SPACE_SUFFIX = ("a searching method may end in @SPACE (widened, the default; micro; stock) to choose the design "
                "spaces it searches, e.g. mcts@stock, metaschedule@stock")


SPACELESS = ("untuned", "expert-oneshot", *ANCHORS)  # methods that search no design space


def with_space(name: str, space: str) -> str:
    """`name` searching `space` unless it names its own space or searches none (widened: unchanged)."""
    if space == "widened" or "@" in name or name in SPACELESS:
        return name
    return f"{name}@{space}"


def get_method(name: str, models: list | None = None) -> Method:
    """`models`: the mcts method's model specs (llm.config.ModelSpec or their texts).
    `NAME@SPACE` searches the given design spaces (space/space.py: SPACES); the default is widened."""
    from ..space.space import SPACES

    base, _, space = name.partition("@")
    if space and space not in SPACES:
        raise UserError(f"method {name}: unknown space {space!r}; use one of {', '.join(SPACES)}")
    if space and base in SPACELESS:
        raise UserError(f"method {name}: {base} searches no design space, so it takes no @{space}")
    method = _method(base, models, space or "widened")
    method.name = name
    return method


def _method(name: str, models: list | None, space: str) -> Method:
    if name == "untuned":
        return Untuned()
    if name == "expert-oneshot":
        from .oneshot import ExpertOneShot

        return ExpertOneShot(name)
    if name in METASCHEDULE_CONFIGS:
        return MetaSchedule(name, METASCHEDULE_CONFIGS[name], space=space)
    if name == "mcts":
        from .mcts import MCTS

        return MCTS(name, list(models or ["expert", "mutate"]), space=space)
    if name.startswith("mcts-single:"):
        from ..llm.config import spec_from_text
        from .mcts import MCTS

        wanted = name.split(":", 1)[1]
        known = {getattr(m, "name", m): m for m in models or []}  # a models file's specs, by name
        spec = known.get(wanted) or spec_from_text(wanted)
        return MCTS(name, [spec], router=f"single:{spec.name}", space=space)
    if name.startswith("shared:"):
        from ..search.routers import make_router
        from .mcts import MCTS

        router = name.split(":", 1)[1]
        names = [getattr(m, "name", m) for m in models or []]
        if len(names) < 2:
            raise UserError(f"method {name}: give the shared tree two or more models with --models")
        try:
            make_router(router, names)
        except ValueError as e:
            raise UserError(str(e)) from None
        return MCTS(name, list(models), router=router, space=space)
    if name in ANCHORS:
        return VendorAnchor(name, name)
    raise UserError(f"unknown method {name!r}; known: {', '.join(METHOD_HELP)}")
