"""Vendor-library anchors: the same computation in numpy (OpenBLAS) or PyTorch (oneDNN).

They set the bar a tuned TVM kernel is judged against. Each is timed in a fresh child process
(as final TVM schedules are re-measured), so thread pools left spinning by one library cannot
slow down another; the library picks its own thread count on this machine.
Run as `python -m shared_mcts.methods.vendor WORKLOAD LIBRARY SEED`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import numpy as np

from ..errors import UserError, last_line
from ..measure.correctness import compare
from ..workloads import get_workload
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


def _measure(workload_spec: str, library: str, seed: int) -> dict:
    """Runs in the child: check the library's result against numpy, then time it."""

    workload = get_workload(workload_spec)
    inputs = workload.make_inputs(seed)
    if library == "numpy":
        fn, info = workload.reference, {"library": f"numpy {np.__version__}"}
    else:
        import torch  # PyTorch: optional, only its anchor needs it

        fn, info = workload.torch_reference, {"library": f"torch {torch.__version__}", "threads": torch.get_num_threads()}
    if fn is None:
        return {**info, "error": f"workload {workload.name} has no {library} version"}
    if library != "numpy":
        check = compare(fn(inputs)[0], workload.reference(inputs)[0])
        if not check.ok:
            return {**info, "error": f"{library} result differs from numpy by {check.max_abs_error:.3g}"}
    return {**info, "samples_s": time_callable(lambda: fn(inputs))}


class VendorAnchor:
    uses_trials = False
    produces_schedule = False

    def __init__(self, name: str, library: str):
        self.name = name
        self.library = library

    def run(self, ctx: MethodContext) -> MethodResult:
        if self.library == "torch" and not torch_available():
            raise UserError("the torch anchor needs PyTorch: pip install 'shared-mcts[torch]'")
        if ctx.workload.reference is None:
            return MethodResult(None, None, [], {"error": f"workload {ctx.workload.name} has no {self.library} version"})
        proc = subprocess.run(
            [sys.executable, "-m", "shared_mcts.methods.vendor", ctx.workload.name, self.library, str(ctx.seed)],
            capture_output=True, text=True, timeout=600,
        )
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            why = last_line(proc.stderr, empty=f"exit {proc.returncode}")
            return MethodResult(None, None, [], {"error": f"{self.library} child failed: {why}"})
        info = json.loads(lines[-1])
        samples = info.pop("samples_s", None)
        if not samples:
            return MethodResult(None, None, [], info)
        latency = statistics.median(samples)
        ctx.on_trial(1, latency)
        return MethodResult(latency, None, [latency], {**info, "samples_s": samples})


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
