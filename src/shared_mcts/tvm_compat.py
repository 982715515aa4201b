"""Workarounds for stock TVM 0.27 that every TVM-using module shares."""

from __future__ import annotations

import importlib.util
import sys
import types


def light_tensor_intrinsics() -> None:
    """Register only the x86 tensor intrinsics, instead of all of them.

    `ms.TuneContext` imports `tvm.s_tir.tensor_intrin`, whose package import parses every
    CUDA, ROCm, ARM, Hexagon and RISC-V intrinsic from TVMScript: 20-60 s per process on these
    machines, for nothing on a CPU target. We put the package in sys.modules without running
    its __init__ and import the x86 submodule (AVX-512/VNNI intrinsics, which the llvm schedule
    rules may use). Other submodules can still be imported explicitly afterwards.
    """
    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    import tvm.s_tir  # noqa: F401  (parent package must exist first)

    spec = importlib.util.find_spec(name)
    package = types.ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    package.__package__ = name
    sys.modules[name] = package
    importlib.import_module(f"{name}.x86")
