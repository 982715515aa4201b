"""What a workload is: a TIR PrimFunc plus what is needed to check and count it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# Inputs come first in the PrimFunc's parameter list, outputs last (te.create_prim_func order).
Reference = Callable[[list[np.ndarray]], list[np.ndarray]]


@dataclass
class Workload:
    """One tunable kernel.

    `make_func` builds the PrimFunc lazily so that listing the registry stays fast.
    `reference` maps the input arrays to the expected outputs; it is None for user workloads
    without one, in which case the untuned program's output serves as the reference.
    """

    name: str
    description: str
    shapes: dict[str, int]
    flops: float
    make_func: Callable[[], object]
    num_inputs: int
    reference: Reference | None = None
    torch_reference: Reference | None = None
    dtype: str = "float32"
    # Parameters that are constants of the deployed model (weights): declared layout-free, so that
    # MetaSchedule's RewriteLayout packs them once, outside the timed kernel, as a deployment with
    # weight pre-packing does. A user PrimFunc's own `layout_free_buffers` attribute is honoured.
    weights: tuple[str, ...] = ()
    _func: object = field(default=None, repr=False)

    def func(self):
        if self._func is None:
            self._func = self.make_func()
        return self._func

    def weight_indices(self) -> list[int]:
        """Positions of the layout-free (weight) parameters."""
        func = self.func()
        names = [str(p.name) for p in func.params]
        unknown = [w for w in self.weights if w not in names]
        if unknown:
            raise ValueError(f"workload {self.name}: no parameter named {', '.join(unknown)} (parameters: {', '.join(names)})")
        declared = func.attrs.get("layout_free_buffers") if func.attrs is not None else None
        return sorted({names.index(w) for w in self.weights} | {int(i) for i in (declared or [])})

    def mod(self):
        import tvm  # TVM: loaded on use (seconds to import)

        func = self.func().with_attr("global_symbol", "main")
        weights = self.weight_indices()
        if weights:
            func = func.with_attr("layout_free_buffers", weights)
        return tvm.IRModule({"main": func})

    def arg_specs(self) -> list[tuple[tuple[int, ...], str]]:
        """(shape, dtype) of every PrimFunc parameter, inputs first."""
        from tvm.s_tir.meta_schedule.arg_info import ArgInfo  # TVM: loaded on use (seconds to import)

        return [(tuple(int(d) for d in info.shape), str(info.dtype)) for info in ArgInfo.from_prim_func(self.func())]

    def make_inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Random inputs scaled so fp32 sums stay well-conditioned (values ~ N(0, 1/sqrt(n)))."""
        rng = np.random.default_rng(seed)
        arrays = []
        for shape, dtype in self.arg_specs()[: self.num_inputs]:
            if dtype.startswith("float"):
                fan = max(shape[-1], 1)
                arrays.append((rng.standard_normal(shape) / np.sqrt(fan)).astype(dtype))
            else:
                arrays.append(rng.integers(-8, 8, size=shape).astype(dtype))
        return arrays

    def output_specs(self) -> list[tuple[tuple[int, ...], str]]:
        return self.arg_specs()[self.num_inputs :]
