"""Check a scheduled module's outputs against the workload's reference."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Allowed error relative to the largest reference value. Schedules reorder fp sums, so fp32
# results move by ~sqrt(n)·eps; a wrong schedule is off by O(1).
RELATIVE_TOLERANCE = {"float64": 1e-9, "float32": 1e-3, "float16": 1e-2, "bfloat16": 2e-2}


@dataclass
class CheckResult:
    ok: bool
    max_abs_error: float
    max_abs_reference: float
    tolerance: float
    reference: str  # "numpy" or "untuned program"
    message: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _run(mod, target: dict, inputs: list[np.ndarray], output_specs) -> list[np.ndarray]:
    import tvm

    dev = tvm.cpu()
    exe = tvm.compile(mod, target=tvm.target.Target(target))
    args = [tvm.runtime.tensor(a, dev) for a in inputs]
    outs = [tvm.runtime.tensor(np.zeros(shape, dtype), dev) for shape, dtype in output_specs]
    exe.jit()["main"](*args, *outs)
    return [o.numpy() for o in outs]


def check_correctness(workload, mod, target: dict, seed: int = 0) -> CheckResult:
    """Run `mod` on random inputs and compare every output with the reference."""
    inputs = workload.make_inputs(seed)
    specs = workload.output_specs()
    if workload.reference is not None:
        expected, source = workload.reference(inputs), "numpy"
    else:
        expected, source = _run(workload.mod(), target, inputs, specs), "untuned program"
    try:
        got = _run(mod, target, inputs, specs)
    except Exception as e:  # a module that fails to build or run is simply not correct
        return CheckResult(False, float("inf"), float("nan"), float("nan"), source, f"failed to run: {str(e).strip().splitlines()[-1][:300]}")
    worst_err, worst_ref, ok, tol = 0.0, 0.0, True, 0.0
    for out, ref in zip(got, expected):
        dtype = str(ref.dtype)
        ref_scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        tol = RELATIVE_TOLERANCE.get(dtype, 0.0) * max(ref_scale, 1e-6)
        err = float(np.max(np.abs(out.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
        if not np.isfinite(err) or err > tol:
            ok = False
        worst_err, worst_ref = max(worst_err, err), max(worst_ref, ref_scale)
    message = "" if ok else f"max |error| {worst_err:.3g} exceeds tolerance {tol:.3g}"
    return CheckResult(ok, worst_err, worst_ref, tol, source, message)
