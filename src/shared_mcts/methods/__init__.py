"""Tuning methods by name. `get_method("metaschedule")` etc.; see `METHOD_HELP`."""

from __future__ import annotations

from ..errors import UserError
from .base import Method, MethodContext, MethodResult
from .metaschedule import MetaSchedule
from .untuned import Untuned
from .vendor import VendorAnchor

__all__ = ["Method", "MethodContext", "MethodResult", "get_method", "METHOD_HELP", "ANCHORS"]

METHOD_HELP = {
    "untuned": "TVM's build of the workload with no schedule",
    "metaschedule": "stock MetaSchedule: evolutionary search + XGBoost (random scores below 100 samples)",
    "metaschedule-warm0": "MetaSchedule with the XGBoost random warm-up turned off",
    "random": "random valid samples of the MetaSchedule design space (replay-trace)",
    "mcts": "our MCTS over the models given by --models (default expert,mutate)",
    "mcts-single:MODEL": "our MCTS with one model doing every expansion (e.g. mcts-single:local:smollm2)",
    "shared:ROUTER": "one tree shared by all --models, routed by bandit, colt, phase, round-robin, single:MODEL or abmcts",
    "numpy": "vendor anchor: numpy / OpenBLAS",
    "torch": "vendor anchor: PyTorch / oneDNN (needs the [torch] extra)",
}
ANCHORS = ("numpy", "torch")


def get_method(name: str, models: list | None = None) -> Method:
    """`models`: the mcts method's model specs (llm.config.ModelSpec or their texts)."""
    if name == "untuned":
        return Untuned()
    if name == "metaschedule":
        return MetaSchedule(name)
    if name == "metaschedule-warm0":
        return MetaSchedule(name, warmup_samples=0)
    if name == "random":
        return MetaSchedule(name, strategy="replay-trace")
    if name == "mcts":
        from .mcts import MCTS

        return MCTS(name, list(models or ["expert", "mutate"]))
    if name.startswith("mcts-single:"):
        from ..llm.config import spec_from_text
        from .mcts import MCTS

        wanted = name.split(":", 1)[1]
        known = {getattr(m, "name", m): m for m in models or []}  # a models file's specs, by name
        spec = known.get(wanted) or spec_from_text(wanted)
        return MCTS(name, [spec], router=f"single:{spec.name}")
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
        return MCTS(name, list(models), router=router)
    if name in ANCHORS:
        return VendorAnchor(name, name)
    raise UserError(f"unknown method {name!r}; known: {', '.join(METHOD_HELP)}")
