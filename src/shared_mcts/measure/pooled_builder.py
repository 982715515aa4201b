"""A builder that keeps its worker processes between batches.

MetaSchedule's LocalBuilder starts a fresh process pool on every `build()` call (to dodge a
memory leak in long-lived workers); each worker then imports TVM, ~1.5-2 s here. With the
small batches of a tree search (4 candidates per round) that start-up costs more than the
compiles. Here one pool lives across batches and each worker is replaced after
`max_uses` builds, which bounds the leak the same way. Same worker function, same results.
"""

from __future__ import annotations


class PooledBuilder:
    def __init__(self, f_build, max_workers: int, timeout_s: float, max_uses: int = 32):
        from tvm.support.popen_pool import PopenPoolExecutor

        self.f_build = f_build
        self.pool = PopenPoolExecutor(max_workers=max_workers, timeout=timeout_s, maximum_process_uses=max_uses)
        self.timeout_s = timeout_s

    def build(self, build_inputs):
        from tvm.s_tir.meta_schedule.builder import BuilderResult
        from tvm.s_tir.meta_schedule.builder.local_builder import _serialize_params, _worker_func
        from tvm.support.popen_pool import StatusKind

        args = [(self.f_build, None, b.mod, b.target, _serialize_params(b.params)) for b in build_inputs]
        results = []
        for outcome in self.pool.map_with_error_catching(lambda a: _worker_func(*a), args):
            if outcome.status == StatusKind.COMPLETE:
                results.append(BuilderResult(outcome.value, None))
            elif outcome.status == StatusKind.TIMEOUT:
                results.append(BuilderResult(None, f"LocalBuilder: Timeout, killed after {self.timeout_s} seconds"))
            else:
                results.append(BuilderResult(None, "LocalBuilder: An exception occurred\n" + str(outcome.value)))
        return results

    def shutdown(self) -> None:
        self.pool.shutdown()
