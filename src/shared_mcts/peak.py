"""Measured fp32 peak: a register-resident FMA kernel built by TVM/LLVM for the target and
timed on every core, next to hardware.py's formula (which cannot see turbo clocks, shared SMT
cores or double-pumped FMA units).

Each thread of the parallel outer loop keeps ACCUMULATORS independent vector accumulators in
registers and updates each `acc = acc * x + y` ITERATIONS times: enough independent FMA chains
to cover the FMA latency on every x86 core we know (latency 4 x 2 units = 8), few enough to stay
in the 16 (AVX2) or 32 (AVX-512) vector registers with `x` and `y`. `x` and `y` come from
memory, so LLVM cannot fold the arithmetic away; the result is written out, so it cannot drop it.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from .errors import last_line
from .threads import use_target_cores

ACCUMULATORS = 12
ITERATIONS = 200_000  # ~1 ms per call on 2 cores; time_evaluator repeats calls to fill MIN_REPEAT_MS
REPEAT = 5
MIN_REPEAT_MS = 20  # 5 timings of >= 20 ms: the whole measurement stays well under a second
STEP = 2.0**-10  # y: exactly representable, so acc0 + n * y is exact while it stays below 2**13


@dataclass(frozen=True)
class MeasuredPeak:
    gflops: float | None  # None: not measured, `how` says why
    how: str

    def as_dict(self) -> dict:
        return asdict(self)


def fma_kernel(threads: int, lanes: int, accumulators: int = ACCUMULATORS, iterations: int = ITERATIONS):
    """The PrimFunc main(A, X, Y, C): C[p, a, :] = A[p, a, :] after `iterations` of acc*X + Y.
    FLOPs: threads * accumulators * lanes * iterations * 2."""
    from tvm.script import tirx as T  # TVM: loaded on use (seconds to import)

    @T.prim_func
    def main(A: T.Buffer((threads, accumulators, lanes), "float32"), X: T.Buffer((lanes,), "float32"),
             Y: T.Buffer((lanes,), "float32"), C: T.Buffer((threads, accumulators, lanes), "float32")):
        T.func_attr({"global_symbol": "main", "tirx.noalias": True})
        for p in T.parallel(threads):
            # A "local" buffer indexed only by unrolled constants: LLVM promotes it to registers.
            acc = T.alloc_buffer((accumulators, lanes), "float32", scope="local")
            for a in T.unroll(accumulators):
                for v in T.vectorized(lanes):
                    acc[a, v] = A[p, a, v]
            for _ in range(iterations):
                for a in T.unroll(accumulators):
                    for v in T.vectorized(lanes):
                        acc[a, v] = acc[a, v] * X[v] + Y[v]
            for a in T.unroll(accumulators):
                for v in T.vectorized(lanes):
                    C[p, a, v] = acc[a, v]

    return main


def kernel_flops(threads: int, lanes: int, accumulators: int = ACCUMULATORS, iterations: int = ITERATIONS) -> float:
    return float(threads * accumulators * lanes * iterations * 2)


def fma_instructions(asm: str) -> dict[str, int]:
    """Packed fp32 FMA instructions in the assembly, counted by register width (zmm/ymm/xmm)."""
    counts: dict[str, int] = {}
    for line in asm.splitlines():
        m = re.match(r"\s*vfn?m(?:add|sub)\d{3}ps\s+(.*)", line)
        registers = re.findall(r"%([xyz]mm)\d+", m.group(1)) if m else []
        if registers:  # AT&T syntax: the destination, which sets the width, comes last
            counts[registers[-1]] = counts.get(registers[-1], 0) + 1
    return counts


def kernel_inputs(threads: int, lanes: int, accumulators: int = ACCUMULATORS, seed: int = 0):
    """(A, X, Y) for which the kernel's result is exact: A on a 2**-10 grid below 1, X = 1, Y = STEP."""
    rng = np.random.default_rng(seed)
    a = (rng.integers(0, 1024, size=(threads, accumulators, lanes)) * STEP).astype("float32")
    return a, np.ones(lanes, "float32"), np.full(lanes, STEP, "float32")


class FmaProbe:
    """The FMA kernel compiled and checked once, timed as often as asked: the peak at a bench's
    start, and the machine's speed beside each later measurement (a shared VM's speed changes)."""

    def __init__(self, target: dict, lanes: int) -> None:
        import tvm  # heavy: TVM, on use

        self.threads, self.lanes = int(target["num-cores"]), lanes
        use_target_cores(target)  # TVM's default on x86 is half the CPUs: one core of two here
        executable = tvm.compile(tvm.IRModule({"main": fma_kernel(self.threads, lanes)}), target=tvm.target.Target(target))
        self.fmas = fma_instructions(executable.mod.inspect_source("asm"))
        self.module = executable.jit()
        self.dev = tvm.cpu()
        a, x, y = kernel_inputs(self.threads, lanes)
        self.args = [tvm.runtime.tensor(v, self.dev) for v in (a, x, y, np.zeros_like(a))]
        self.module["main"](*self.args)
        if not np.array_equal(self.args[3].numpy(), a + np.float32(ITERATIONS * STEP)):
            raise RuntimeError("the FMA kernel computed a wrong result")

    def gflops(self) -> float:
        timer = self.module.time_evaluator("main", self.dev, number=1, repeat=REPEAT, min_repeat_ms=MIN_REPEAT_MS)
        # The fastest timing: interference from other processes only ever slows the kernel down.
        return kernel_flops(self.threads, self.lanes) / min(timer(*self.args).results) / 1e9

    def how(self, target: dict) -> str:
        isa = "; ".join(f"vfmadd on {reg}: {n} in the code" for reg, n in sorted(self.fmas.items())) or "no FMA instructions: mul + add"
        return (f"TVM/LLVM FMA kernel for mcpu {target.get('mcpu', 'generic')}: {self.threads} threads x {ACCUMULATORS} "
                f"accumulators of {self.lanes} fp32 lanes ({isa}), fastest of {REPEAT} timings of >= {MIN_REPEAT_MS} ms")


def _measure(target: dict, lanes: int) -> MeasuredPeak:
    probe = FmaProbe(target, lanes)
    return MeasuredPeak(probe.gflops(), probe.how(target))


@functools.cache
def _measure_cached(target_json: str, lanes: int) -> MeasuredPeak:
    target = json.loads(target_json)
    if target.get("kind") != "llvm":
        return MeasuredPeak(None, f"not measured: the kernel is for llvm CPU targets, not {target.get('kind')!r}")
    try:
        return _measure(target, lanes)
    except Exception as e:  # a peak we cannot measure is reported as such, never as a number
        why = f"measurement failed: {type(e).__name__}: {last_line(e, empty='-')}"
        warnings.warn(f"fp32 peak {why}", stacklevel=3)
        return MeasuredPeak(None, why[:300])


def measure_peak(target: dict, lanes: int) -> MeasuredPeak:
    """The fp32 peak of this machine for `target` (vectors of `lanes` fp32 lanes), measured once
    per process and target."""
    return _measure_cached(json.dumps(target, sort_keys=True), lanes)
