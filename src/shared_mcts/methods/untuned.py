"""The program TVM builds with no schedule at all: the starting point every speedup is over."""

from __future__ import annotations

from .base import MethodContext, MethodResult


class Untuned:
    name = "untuned"
    uses_trials = False
    produces_schedule = True

    def run(self, ctx: MethodContext) -> MethodResult:
        mod = ctx.workload.mod()
        (measurement,) = ctx.measurer.measure_mods([mod])
        ctx.on_trial(1, measurement.latency_s)
        info = {} if measurement.ok else {"error": f"{measurement.error_kind}: {measurement.error}"}
        return MethodResult(measurement.latency_s, mod if measurement.ok else None, [measurement.latency_s], info)
