"""Deliberately broken pieces for the candidate-fault tests: kernels that segfault or hang when
run, and a run evaluator that kills or freezes its worker process on chosen calls."""

import os
import signal
import time
from pathlib import Path

N = 16


def segfaulting_kernel():
    """Reads ~6 GB past its input: a real segfault inside the compiled candidate."""
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def main(A: T.Buffer((N,), "float32"), B: T.Buffer((N,), "float32")):
        for i in range(N):
            with T.sblock("B"):
                vi = T.axis.spatial(N, i)
                B[vi] = A[vi * 100000000]

    return main


def hanging_kernel():
    """About 10^15 dependent float additions: runs far past any run timeout."""
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def main(A: T.Buffer((N,), "float32"), B: T.Buffer((N,), "float32")):
        for i, j, k in T.grid(100000, 100000, 100000):
            with T.sblock("B"):
                vi, vj, vk = T.axis.remap("RRR", [i, j, k])
                with T.init():
                    B[0] = T.float32(0)
                B[0] = B[0] + A[0]

    return main


def good_kernel():
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def main(A: T.Buffer((N,), "float32"), B: T.Buffer((N,), "float32")):
        for i in range(N):
            with T.sblock("B"):
                vi = T.axis.spatial(N, i)
                B[vi] = A[vi] + T.float32(1)

    return main


def faulty_run_evaluator(counter: Path, crash_on: set, hang_on: set):
    """MetaSchedule's default run evaluator, except that call number n (counted across worker
    processes in `counter`) segfaults its worker if n is in `crash_on` and hangs if in `hang_on`."""

    def evaluate(rt_mod, device, evaluator_config, repeated_args):
        from tvm.s_tir.meta_schedule.runner.local_runner import default_run_evaluator

        n = len(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text("x" * n)
        if n in crash_on:
            os.kill(os.getpid(), signal.SIGSEGV)
        if n in hang_on:
            time.sleep(3600)
        return default_run_evaluator(rt_mod, device, evaluator_config, repeated_args)

    return evaluate
