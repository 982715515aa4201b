"""The schedule space of a workload: MetaSchedule's design spaces, their decisions as named
knobs, and edits applied by replaying the trace with new decisions.

A candidate is one design space plus a value for every knob. Applying an edit replays the
space's trace with the new decisions on a fresh schedule and runs every postprocessor; the
decisions TVM actually applied are read back, so a value TVM would have silently repaired is
rejected instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .analysis import innermost_contiguous
from .knobs import CATEGORICAL, COMPUTE_LOCATION, SPACE, TILE, Knob, validate_edit

_SAMPLE_KINDS = {"SamplePerfectTile": TILE, "SampleCategorical": CATEGORICAL, "SampleComputeLocation": COMPUTE_LOCATION}


@dataclass
class Candidate:
    space: int
    values: dict[str, Any]  # knob name -> value (tile: tuple; categorical: the value itself)
    sch: Any = field(repr=False)  # tvm.s_tir.Schedule after postprocessing
    key: int = 0  # structural hash of sch.mod

    @property
    def mod(self):
        return self.sch.mod

    @property
    def trace(self):
        return self.sch.trace


@dataclass
class _SampleSite:
    """One sampling instruction of a design space's trace, and the knob it becomes."""

    index: int  # position in trace.insts
    knob: Knob  # value field holds the design space's own decision


class ScheduleSpace:
    def __init__(self, workload, target: dict, seed: int = 0):
        import logging

        from tvm.s_tir import meta_schedule as ms
        from tvm.target import Target

        from ..tvm_compat import light_tensor_intrinsics

        if target.get("kind") == "llvm":
            light_tensor_intrinsics()
        logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.ERROR)
        self.workload = workload
        self.mod = workload.mod()
        self.target = Target(target)
        self.ctx = ms.TuneContext(mod=self.mod, target=self.target, space_generator=ms.space_generator.PostOrderApply(),
                                  task_name=workload.name, rand_state=seed, num_threads=1)
        self.postprocs = list(self.ctx.space_generator.postprocs)
        self.spaces = [sch.trace.simplified(remove_postproc=True) for sch in self.ctx.generate_design_space()]
        contiguous = innermost_contiguous(self.mod["main"].script())
        self.sites = [_mark_innermost_spatial(self._sites(trace), contiguous) for trace in self.spaces]
        self.space_choices = tuple(range(len(self.spaces)))

    # -- knob names ------------------------------------------------------------------------

    def _sites(self, trace) -> list[_SampleSite]:
        """Name every sampling instruction by replaying the trace and asking the schedule what
        each random variable points at (block name, loop variable)."""
        from tvm.s_tir import Schedule

        sch = Schedule(self.mod)
        replayed: list[tuple[str, list[str], list, Any, str]] = []  # kind, input names, attrs, decision, block

        def provider(inst, inputs, attrs, decision):
            if inst.kind.name in _SAMPLE_KINDS:
                names = [_rv_name(sch, rv) for rv in inputs]
                replayed.append((inst.kind.name, names, list(attrs), decision, self._block_of(sch, inputs)))
            return decision

        trace.apply_to_schedule(sch, remove_postproc=True, decision_provider=provider)
        positions = [i for i, inst in enumerate(trace.insts) if inst.kind.name in _SAMPLE_KINDS]
        annotations = self._categorical_targets(trace)
        sites, names = [], set()
        for pos, (kind, inputs, attrs, decision, block) in zip(positions, replayed):
            if kind == "SamplePerfectTile":
                n, max_inner = int(attrs[0]), int(attrs[1])
                factors = tuple(int(d) for d in decision)
                loop = inputs[0] if inputs else f"loop{pos}"
                knob = Knob(f"{block}/{loop}/tile", TILE, factors, block=block, loop=loop, extent=_prod(factors), parts=n,
                            max_innermost=max_inner, loop_kind="spatial" if n >= 3 else "reduction")
            elif kind == "SampleCategorical":
                choices = tuple(int(c) for c in attrs[0])
                label, annotated = annotations.get(pos, ("choice", "root"))
                knob = Knob(f"{annotated}/{label}", CATEGORICAL, choices[int(decision)], block=annotated, choices=choices)
            else:
                located = inputs[0] if inputs else block
                knob = Knob(f"{located}/compute_at", COMPUTE_LOCATION, int(decision), block=located)
            name, k = knob.name, 2
            while name in names:  # two sites on the same block and loop: keep names unique and stable
                name, k = f"{knob.name}#{k}", k + 1
            names.add(name)
            if name != knob.name:
                knob = Knob(**{**knob.__dict__, "name": name})
            sites.append(_SampleSite(pos, knob))
        return sites

    @staticmethod
    def _block_of(sch, inputs) -> str:
        """Name of the block a loop or block RV belongs to (for a loop: the first block under it)."""
        for rv in inputs:
            obj = sch.get(rv)
            if hasattr(obj, "name_hint"):
                return obj.name_hint
            try:
                blocks = sch.get_child_blocks(rv)
            except Exception:  # neither a block nor a loop
                continue
            if blocks:
                return sch.get(blocks[0]).name_hint
        return "root"

    @staticmethod
    def _categorical_targets(trace) -> dict[int, tuple[str, str]]:
        """For each SampleCategorical, the annotation it feeds (e.g. unroll) and the block annotated."""
        out = {}
        insts = list(trace.insts)
        block_names = {}
        for inst in insts:
            if inst.kind.name == "GetSBlock":
                block_names[inst.outputs[0].__hash__()] = str(inst.attrs[0])
        for i, inst in enumerate(insts):
            if inst.kind.name != "SampleCategorical":
                continue
            rv = inst.outputs[0]
            for later in insts[i + 1:]:
                if later.kind.name == "Annotate" and any(x.same_as(rv) for x in later.inputs[1:] if hasattr(x, "same_as")):
                    key = str(later.attrs[0])
                    label = "unroll" if "unroll" in key else key.rsplit(".", 1)[-1]
                    out[i] = (label, block_names.get(later.inputs[0].__hash__(), "root"))
                    break
        return out

    # -- the Space protocol ---------------------------------------------------------------

    def knobs(self, candidate: Candidate) -> dict[str, Knob]:
        knobs = {s.knob.name: Knob(**{**s.knob.__dict__, "value": candidate.values[s.knob.name]})
                 for s in self.sites[candidate.space]}
        if len(self.spaces) > 1:
            knobs["space"] = Knob("space", SPACE, candidate.space, choices=self.space_choices)
        return knobs

    def key(self, candidate: Candidate) -> int:
        return candidate.key

    def initial(self) -> list[Candidate]:
        """Each design space with the decisions it was generated with (not all valid)."""
        out = []
        for i, sites in enumerate(self.sites):
            candidate, _ = self.build(i, {s.knob.name: s.knob.value for s in sites})
            if candidate is not None:
                out.append(candidate)
        return out

    def sample(self, count: int, rng: random.Random, attempts_per_sample: int = 20) -> list[Candidate]:
        """Fresh random candidates: a random design space replayed with fresh decisions."""
        from tvm.s_tir import Schedule
        from tvm.s_tir.schedule import Trace

        out = []
        for _ in range(count):
            for _ in range(attempts_per_sample):
                space = rng.randrange(len(self.spaces))
                trace = self.spaces[space]
                sch = Schedule(self.mod, seed=rng.randrange(1, 2**31 - 1))
                try:
                    Trace(trace.insts, {}).apply_to_schedule(sch, remove_postproc=True)
                except Exception:  # some random decisions are invalid: draw again
                    continue
                if not self._postprocess(sch):
                    continue
                out.append(self._candidate(space, sch))
                break
        return out

    def apply(self, candidate: Candidate, changes: dict) -> tuple[Candidate | None, str | None]:
        knobs = self.knobs(candidate)
        reason = validate_edit(knobs, changes)
        if reason:
            return None, reason
        space = changes.get("space", candidate.space)
        if space != candidate.space:
            # Carry over every knob the other space shares by name; the rest keep that space's defaults.
            values = {s.knob.name: candidate.values.get(s.knob.name, s.knob.value) for s in self.sites[space]}
        else:
            values = dict(candidate.values)
        for name, value in changes.items():
            if name != "space":
                if name not in values:
                    return None, f"knob {name!r} does not exist in design space {space}"
                values[name] = tuple(value) if isinstance(value, list) else value
        return self.build(space, values)

    def build(self, space: int, values: dict[str, Any]) -> tuple[Candidate | None, str | None]:
        """Replay design space `space` with these knob values; None and a reason if TVM rejects
        it, a postprocessor fails, or TVM applied something other than what was asked."""
        from tvm.s_tir import Schedule
        from tvm.s_tir.schedule import Trace

        trace = self.spaces[space]
        decisions = {}
        for site in self.sites[space]:
            inst = trace.insts[site.index]
            value = values[site.knob.name]
            if site.knob.kind == CATEGORICAL:
                value = site.knob.choices.index(value)
            decisions[inst] = list(value) if site.knob.kind == TILE else value
        sch = Schedule(self.mod)
        try:
            Trace(trace.insts, decisions).apply_to_schedule(sch, remove_postproc=True)
        except Exception as e:  # TVM's own rejection of the decisions
            return None, f"TVM rejected the schedule: {_last_line(e)}"
        if not self._postprocess(sch):
            return None, "a MetaSchedule postprocessor rejected the schedule"
        candidate = self._candidate(space, sch)
        for name, want in values.items():
            got = candidate.values.get(name)
            if got != want:
                return None, f"TVM changed {name} from {want} to {got} (invalid value)"
        return candidate, None

    def _postprocess(self, sch) -> bool:
        sch.enter_postproc()
        for postproc in self.postprocs:
            try:
                if not postproc.apply(sch):
                    return False
            except Exception:  # a postprocessor that throws rejects the schedule like one returning False
                return False
        return True

    def values_from_trace(self, space: int, trace) -> dict[str, Any]:
        """Knob values held by a trace of design space `space` (sampling instructions in order)."""
        sample_insts = [inst for inst in trace.insts if inst.kind.name in _SAMPLE_KINDS]
        decisions = trace.decisions
        return {site.knob.name: _decision_value(site.knob, decisions[inst] if inst in decisions else None)
                for site, inst in zip(self.sites[space], sample_insts)}

    def _candidate(self, space: int, sch) -> Candidate:
        import tvm_ffi

        return Candidate(space, self.values_from_trace(space, sch.trace), sch, int(tvm_ffi.structural_hash(sch.mod)))


def _decision_value(knob: Knob, decision):
    if decision is None:
        return None
    if knob.kind == TILE:
        return tuple(int(d) for d in decision)
    if knob.kind == CATEGORICAL:
        return knob.choices[int(decision)]
    return int(decision)


def _mark_innermost_spatial(sites: list[_SampleSite], contiguous: dict[str, bool]) -> list[_SampleSite]:
    last: dict[str, int] = {}
    for i, site in enumerate(sites):
        if site.knob.kind == TILE and site.knob.loop_kind == "spatial":
            last[site.knob.block] = i
    for i in last.values():
        knob = sites[i].knob
        sites[i] = _SampleSite(sites[i].index, Knob(**{**knob.__dict__, "innermost_spatial": True,
                                                        "contiguous": contiguous.get(knob.block, True)}))
    return sites


def _rv_name(sch, rv) -> str:
    obj = sch.get(rv)
    if hasattr(obj, "name_hint"):  # a block
        return obj.name_hint
    loop_var = getattr(obj, "loop_var", None)
    return loop_var.name if loop_var is not None else str(obj)[:20]


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def _last_line(error: Exception) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:300]
