"""`expert-oneshot`: the single schedule the `expert` rules pick from the hardware facts, with no
search. It shows how far the structural space reaches by rules alone, and so how much a search
adds beyond them."""

from __future__ import annotations

from ..hardware import host_info
from ..proposers.expert import MicroKernelRules
from ..space.space import MICRO, ScheduleSpace
from .base import MethodContext, MethodResult


class ExpertOneShot:
    uses_trials = False
    produces_schedule = True

    def __init__(self, name: str = "expert-oneshot"):
        self.name = name

    def run(self, ctx: MethodContext) -> MethodResult:

        space = ScheduleSpace(ctx.workload, ctx.target, seed=ctx.seed, space=MICRO)
        if not any(d.family == MICRO for d in space.designs):
            return MethodResult(None, None, [], {"error": "no contraction the micro-kernel templates apply to"})
        rules = MicroKernelRules(host_info(ctx.target).as_dict())
        candidate = space.initial()[0]
        structure = rules.structure(space.knobs(candidate))
        if structure:
            candidate, reason = space.apply(candidate, structure)
            if candidate is None:
                return MethodResult(None, None, [], {"error": f"the rules' structure is invalid: {reason}"})
        tiles = rules.apply(space.knobs(candidate), rules.recipes()[0])
        if tiles:
            candidate, reason = space.apply(candidate, tiles)
            if candidate is None:
                return MethodResult(None, None, [], {"error": f"the rules' tiles are invalid: {reason}"})
        (measurement,) = ctx.measurer.measure_mods([candidate.mod])
        ctx.on_trial(1, measurement.latency_s)
        info = {"design_space": space.describe_space(candidate.space), "structure": structure,
                "values": {k: list(v) if isinstance(v, tuple) else v for k, v in candidate.values.items()}}
        if not measurement.ok:
            info["error"] = f"{measurement.error_kind}: {measurement.error}"
            return MethodResult(None, None, [None], info)
        return MethodResult(measurement.latency_s, candidate.mod, [measurement.latency_s], info)
