"""Vendor-library anchors: the same computation in numpy (OpenBLAS) or PyTorch (oneDNN).

They set the bar a tuned TVM kernel is judged against. Timed in this process on the same
inputs as the TVM kernels; the thread count is whatever the library picks on this machine.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..errors import UserError
from .base import MethodContext, MethodResult


def time_callable(fn, repeat: int = 10, min_repeat_s: float = 0.05) -> list[float]:
    """Median-friendly timings: each sample averages enough calls to last min_repeat_s."""
    fn()  # warm-up
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(min_repeat_s / once))
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return samples


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class VendorAnchor:
    uses_trials = False
    produces_schedule = False

    def __init__(self, name: str, library: str):
        self.name = name
        self.library = library

    def run(self, ctx: MethodContext) -> MethodResult:
        workload = ctx.workload
        inputs = workload.make_inputs(ctx.seed)
        if self.library == "numpy":
            fn = workload.reference
            info = {"library": f"numpy {np.__version__}"}
        else:
            if not torch_available():
                raise UserError("the torch anchor needs PyTorch: pip install 'shared-mcts[torch]'")
            import torch

            fn = workload.torch_reference
            info = {"library": f"torch {torch.__version__}", "threads": torch.get_num_threads()}
        if fn is None:
            return MethodResult(None, None, [], {**info, "error": f"workload {workload.name} has no {self.library} version"})
        if self.library == "torch":
            from ..measure.correctness import RELATIVE_TOLERANCE

            got, want = fn(inputs)[0], workload.reference(inputs)[0]
            err = float(np.max(np.abs(got - want)))
            if err > RELATIVE_TOLERANCE.get(str(want.dtype), 0) * max(float(np.max(np.abs(want))), 1e-6):
                return MethodResult(None, None, [], {**info, "error": f"torch result differs from numpy by {err:.3g}"})
        samples = time_callable(lambda: fn(inputs))
        latency = statistics.median(samples)
        ctx.on_trial(1, latency)
        return MethodResult(latency, None, [latency], info)
