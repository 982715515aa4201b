"""Workload registry: built-in kernels by name, user kernels by file.

`get_workload("llama-mlp")`, `get_workload("my_ops.py:matmul")`, `get_workload("kernel.py")`
(a TVMScript file) all return a `Workload`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from . import user
from .base import Workload
from .catalog import builtin_workloads

__all__ = ["Workload", "get_workload", "list_workloads"]

_REGISTRY: dict[str, Workload] | None = None


def _registry() -> dict[str, Workload]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = {w.name: w for w in builtin_workloads()}
    return _REGISTRY


def list_workloads() -> list[Workload]:
    return list(_registry().values())


def get_workload(spec: str) -> Workload:

    if spec in _registry():
        return _registry()[spec]
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        path, function = spec.rsplit(":", 1)
        return user.load_python(Path(path), function, spec)
    if spec.endswith(".py") or Path(spec).exists() or "/" in spec:
        return user.load_tvmscript(Path(spec))
    raise UserError(f"unknown workload {spec!r}; known: {', '.join(_registry())} (or path/file.py:function, or a TVMScript file)")
