"""Check a scheduled module's outputs against the workload's reference."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import last_line

# Allowed error relative to the largest reference value. Schedules reorder fp sums, so fp32
# results move by ~sqrt(n)·eps; a wrong schedule is off by O(1).
RELATIVE_TOLERANCE = {"float64": 1e-9, "float32": 1e-3, "float16": 1e-2, "bfloat16": 2e-2}


@dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs_error: float
    max_abs_reference: float
    tolerance: float


def compare(got: np.ndarray, reference: np.ndarray) -> Comparison:
    """One output against its reference, within RELATIVE_TOLERANCE of the reference's scale."""
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    tolerance = RELATIVE_TOLERANCE.get(str(reference.dtype), 0.0) * max(scale, 1e-6)
    error = float(np.max(np.abs(got.astype(np.float64) - reference.astype(np.float64)))) if reference.size else 0.0
    return Comparison(bool(np.isfinite(error) and error <= tolerance), error, scale, tolerance)


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
    import tvm  # TVM: loaded on use (seconds to import)

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
        return CheckResult(False, float("inf"), float("nan"), float("nan"), source, f"failed to run: {last_line(e)}")
    worst_err, worst_ref, ok, tol = 0.0, 0.0, True, 0.0
    for out, ref in zip(got, expected):
        c = compare(out, ref)
        ok, tol = ok and c.ok, c.tolerance
        worst_err, worst_ref = max(worst_err, c.max_abs_error), max(worst_ref, c.max_abs_reference)
    message = "" if ok else f"max |error| {worst_err:.3g} exceeds tolerance {tol:.3g}"
    return CheckResult(ok, worst_err, worst_ref, tol, source, message)
