"""How many threads TVM's runtime runs a kernel on.

Without TVM_NUM_THREADS (or OMP_NUM_THREADS), TVM's runtime starts half of
`std::thread::hardware_concurrency()` workers on x86 (src/runtime/threading_backend.cc:
"ignore hyper-threading"). On a VM whose vCPUs are whole cores that is half the machine: on the
2-vCPU machines here every TVM kernel ran on one core while numpy and PyTorch used two (a
register-resident FMA kernel: 265 GFLOP/s with the default, 525 with TVM_NUM_THREADS=2, on a
2-vCPU AMD EPYC Zen 5). The kernels we time must use the cores the target names, so the
variable is set before TVM's thread pool starts in this process, and the worker processes
that build, run and re-measure candidates inherit it.

The pool reads the variable once, when it is created: `use_target_cores` must run before any
parallel TVM kernel runs in the process; the processes that time kernels (builder and runner
workers, the re-measurement child) are started after it, so they always see it.
"""

from __future__ import annotations

import os

VARIABLE = "TVM_NUM_THREADS"


def use_target_cores(target: dict) -> int:
    """Make TVM's runtime use the target's `num-cores` threads in this process and its children.
    An explicit TVM_NUM_THREADS from the user wins. Returns the thread count in effect."""
    wanted = os.environ.get(VARIABLE) or os.environ.get("OMP_NUM_THREADS")
    if wanted is None:
        cores = int(target.get("num-cores") or os.cpu_count() or 1)
        os.environ[VARIABLE] = str(cores)
        return cores
    return int(wanted)


def threads_in_effect() -> int | None:
    """The thread count TVM's runtime is asked to use (None: TVM's own default, half the CPUs on x86)."""
    value = os.environ.get(VARIABLE) or os.environ.get("OMP_NUM_THREADS")
    return int(value) if value else None
