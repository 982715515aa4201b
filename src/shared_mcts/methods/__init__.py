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
    "numpy": "vendor anchor: numpy / OpenBLAS",
    "torch": "vendor anchor: PyTorch / oneDNN (needs the [torch] extra)",
}
ANCHORS = ("numpy", "torch")


def get_method(name: str, models: list[str] | None = None) -> Method:
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

        return MCTS(name, models or ["expert", "mutate"])
    if name in ANCHORS:
        return VendorAnchor(name, name)
    raise UserError(f"unknown method {name!r}; known: {', '.join(METHOD_HELP)}")
