"""The schedule space of a workload: design spaces, their decisions as named knobs, and edits
applied by replaying a design space's trace with new decisions.

Design spaces come from two families, chosen with `space=`:
- `micro` (microkernel.py): one design space per structural choice (which iterator a
  contraction's register micro-kernel vectorizes, which elementwise blocks are materialized);
- `stock`: MetaSchedule's default CPU sketches (PostOrderApply with the target's rules);
- `widened` (the default): both, as MetaSchedule's SpaceGeneratorUnion.
The same union is what the MetaSchedule baselines search (`space_generator`), so every method
compares on one space.

A candidate is one design space plus a value for every decision knob. Structural knobs (and
`space`, `stock/sketch`) select the design space; an edit may change structure and tiles
together. Applying an edit replays the design space's trace with the new decisions on a fresh
schedule and runs every postprocessor; the decisions TVM actually applied are read back, so a
value TVM would have silently repaired is rejected instead. Knobs of the old design space that
do not fit the new one are reset to the new one's values, and the candidate says which
(`repairs`).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from typing import Any

from ..errors import last_line
from ..hardware import simd_lanes_fp32, target_features
from ..tvm_compat import light_tensor_intrinsics
from .analysis import innermost_contiguous
from .blocks import analyze
from .knobs import CATEGORICAL, COMPUTE_LOCATION, SPACE, STRUCTURE, TILE, Knob, validate
from .microkernel import all_structures, apply_structure, structural_choices

_SAMPLE_KINDS = {"SamplePerfectTile": TILE, "SampleCategorical": CATEGORICAL, "SampleComputeLocation": COMPUTE_LOCATION}

SPACES = ("widened", "micro", "stock")  # what `space=` accepts; widened = micro + stock
MICRO, STOCK = "micro", "stock"
SKETCH = "stock/sketch"

SPACE_HELP = {
    "widened": "register micro-kernel templates (structural knobs) and MetaSchedule's default sketches together",
    "micro": "only the register micro-kernel templates",
    "stock": "only MetaSchedule's default CPU sketches (PostOrderApply)",
}


@dataclass
class Candidate:
    space: int  # index of the design space
    values: dict[str, Any]  # decision knob name -> value (tile: tuple; categorical: the value itself)
    sch: Any = field(repr=False)  # tvm.s_tir.Schedule after postprocessing
    key: int = 0  # structural hash of sch.mod
    repairs: tuple = ()  # knobs an edit's structural change reset, and why

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


@dataclass
class DesignSpace:
    family: str  # MICRO or STOCK
    structure: dict  # structural knob values; for a stock sketch {SKETCH: its index}
    trace: Any
    sites: list[_SampleSite]


def space_generator(workload, target: dict, space: str = "widened"):
    """MetaSchedule's SpaceGenerator for `space`: what ScheduleSpace enumerates and what the
    MetaSchedule baselines search."""
    return _Generator(workload, target, space).generator


class _Generator:
    """The structures of the micro family and the SpaceGenerator enumerating them (micro
    structures first, then the stock sketches)."""

    def __init__(self, workload, target: dict, space: str):
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)

        if space not in SPACES:
            raise ValueError(f"unknown space {space!r}; use one of {', '.join(SPACES)}")
        self.mod = workload.mod()
        self.lanes = simd_lanes_fp32(target_features(target)) if target.get("kind") == "llvm" else 1
        self.analysis = analyze(self.mod["main"], frozenset(workload.weight_indices()))
        self.structures = all_structures(self.analysis) if space != STOCK and self.analysis.contractions else []
        generators = []
        for structure in self.structures:
            def schedule(sch, structure=structure):
                apply_structure(sch, self.analysis, structure, self.lanes)
                return sch

            generators.append(ms.space_generator.ScheduleFn(schedule))
        if space != MICRO or not self.structures:
            generators.append(ms.space_generator.PostOrderApply())
        self.generator = generators[0] if len(generators) == 1 else ms.space_generator.SpaceGeneratorUnion(generators)
        self.apply_structure = apply_structure


class ScheduleSpace:
    def __init__(self, workload, target: dict, seed: int = 0, space: str = "widened"):

        from tvm.s_tir import Schedule  # TVM: loaded on use (seconds to import)
        from tvm.s_tir import meta_schedule as ms  # TVM: loaded on use (seconds to import)
        from tvm.target import Target  # TVM: loaded on use (seconds to import)

        if target.get("kind") == "llvm":
            light_tensor_intrinsics()
        logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.ERROR)
        self.workload = workload
        self.kind = space
        generator = _Generator(workload, target, space)
        self.mod = generator.mod
        self.target = Target(target)
        self.ctx = ms.TuneContext(mod=self.mod, target=self.target, space_generator=generator.generator,
                                  task_name=workload.name, rand_state=seed, num_threads=1)
        self.postprocs = list(self.ctx.space_generator.postprocs)
        traces = [sch.trace.simplified(remove_postproc=True) for sch in self.ctx.generate_design_space()]
        contiguous = innermost_contiguous(self.mod["main"].script())
        self.designs: list[DesignSpace] = []
        for i, trace in enumerate(traces):
            if i < len(generator.structures):
                structure = generator.structures[i]
                tiles = generator.apply_structure(Schedule(self.mod), generator.analysis, structure, generator.lanes)
                names = {n: (site.name, site) for n, site in enumerate(tiles)}
                self.designs.append(DesignSpace(MICRO, structure, trace, self._micro_sites(trace, names)))
            else:
                sketch = i - len(generator.structures)
                self.designs.append(DesignSpace(STOCK, {SKETCH: sketch}, trace,
                                                _mark_innermost_spatial(self._sites(trace), contiguous)))
        self.structural = {c.name: c for c in structural_choices(generator.analysis)} if generator.structures else {}
        self.families = tuple(dict.fromkeys(d.family for d in self.designs))
        self.sketches = sum(d.family == STOCK for d in self.designs)

    # kept for readers of the old interface: every design space's trace and sites
    @property
    def spaces(self) -> list:
        return [d.trace for d in self.designs]

    @property
    def sites(self) -> list[list[_SampleSite]]:
        return [d.sites for d in self.designs]

    # -- knob names ------------------------------------------------------------------------

    def _micro_sites(self, trace, names: dict) -> list[_SampleSite]:
        """The micro template samples only tiles, in the order microkernel.TileSite lists them."""
        sites = []
        positions = [i for i, inst in enumerate(trace.insts) if inst.kind.name == "SamplePerfectTile"]
        decisions = trace.decisions
        for n, pos in enumerate(positions):
            name, meaning = names[n]
            inst = trace.insts[pos]
            parts, max_inner = int(inst.attrs[0]), int(inst.attrs[1])
            factors = tuple(int(d) for d in decisions[inst])
            block, loop = name.split("/")[0], name.split("/")[1]
            sites.append(_SampleSite(pos, Knob(name, TILE, factors, block=block, loop=loop, extent=math.prod(factors),
                                               parts=parts, max_innermost=max_inner,
                                               loop_kind="reduction" if meaning.roles[0] == "outer" else "spatial",
                                               innermost_spatial=meaning.lanes > 1, roles=meaning.roles,
                                               lanes=meaning.lanes)))
        return sites

    def _sites(self, trace) -> list[_SampleSite]:
        """Name every sampling instruction by replaying the trace and asking the schedule what
        each random variable points at (block name, loop variable)."""
        from tvm.s_tir import Schedule  # TVM: loaded on use (seconds to import)

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
                knob = Knob(f"{block}/{loop}/tile", TILE, factors, block=block, loop=loop, extent=math.prod(factors), parts=n,
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

    # -- structural knobs ------------------------------------------------------------------

    def structure_knobs(self, space: int) -> dict[str, Knob]:
        """The knobs that choose the design space, with the values of design space `space`."""
        design = self.designs[space]
        knobs: dict[str, Knob] = {}
        if len(self.families) > 1:
            knobs["space"] = Knob("space", SPACE, design.family, choices=self.families,
                                  description="'micro': register micro-kernel templates; 'stock': MetaSchedule's "
                                              "default CPU sketches")
        if design.family == MICRO:
            for name, choice in self.structural.items():
                knobs[name] = Knob(name, STRUCTURE, design.structure[name], block=name.split("/")[0],
                                   choices=choice.choices, description=choice.description)
        elif self.sketches > 1:
            knobs[SKETCH] = Knob(SKETCH, STRUCTURE, design.structure[SKETCH], choices=tuple(range(self.sketches)),
                                 description="which of MetaSchedule's default sketches (cache-write and "
                                             "parallel/vectorize/unroll variants)")
        return knobs

    def _target_space(self, candidate: Candidate, changes: dict) -> tuple[int | None, str | None]:
        """The design space an edit's structural changes select (None and a reason if none)."""
        design = self.designs[candidate.space]
        structural = {n: v for n, v in changes.items() if n == "space" or n == SKETCH or n in self.structural}
        if not structural:
            return candidate.space, None
        family = structural.get("space", design.family)
        if "space" in structural and (not isinstance(family, str) or family not in self.families):
            return None, f"space: {family!r} is not one of {list(self.families)}"
        if any(n in self.structural for n in structural):
            if "space" in structural and family != MICRO:
                return None, "structural knobs of the micro space cannot be set while switching to space 'stock'"
            family = MICRO
        if SKETCH in structural:
            if family != STOCK or "space" not in structural and design.family != STOCK:
                return None, f"{SKETCH} needs space 'stock'"
        if family == MICRO:
            wanted = dict(design.structure) if design.family == MICRO else dict(self._first(MICRO).structure)
            for name in self.structural:
                if name in structural:
                    knob = Knob(name, STRUCTURE, wanted[name], choices=self.structural[name].choices)
                    reason = validate(knob, structural[name])
                    if reason:
                        return None, reason
                    wanted[name] = structural[name]
            return next(i for i, d in enumerate(self.designs) if d.family == MICRO and d.structure == wanted), None
        sketch = structural.get(SKETCH, design.structure[SKETCH] if design.family == STOCK else 0)
        reason = validate(Knob(SKETCH, STRUCTURE, 0, choices=tuple(range(self.sketches))), sketch)
        if reason:
            return None, reason
        return next(i for i, d in enumerate(self.designs) if d.family == STOCK and d.structure[SKETCH] == sketch), None

    def _first(self, family: str) -> DesignSpace:
        return next(d for d in self.designs if d.family == family)

    # -- the Space protocol ---------------------------------------------------------------

    def knobs(self, candidate: Candidate) -> dict[str, Knob]:
        knobs = {s.knob.name: Knob(**{**s.knob.__dict__, "value": candidate.values[s.knob.name]})
                 for s in self.designs[candidate.space].sites}
        return {**self.structure_knobs(candidate.space), **knobs}

    def key(self, candidate: Candidate) -> int:
        return candidate.key

    def initial(self) -> list[Candidate]:
        """Each design space with the decisions it was generated with (not all valid)."""
        out = []
        for i, design in enumerate(self.designs):
            candidate, _ = self.build(i, {s.knob.name: s.knob.value for s in design.sites})
            if candidate is not None:
                out.append(candidate)
        return out

    def sample(self, count: int, rng: random.Random, attempts_per_sample: int = 20) -> list[Candidate]:
        """Fresh random candidates: a random family, one of its design spaces, fresh decisions."""
        from tvm.s_tir import Schedule  # TVM: loaded on use (seconds to import)
        from tvm.s_tir.schedule import Trace  # TVM: loaded on use (seconds to import)

        out = []
        for _ in range(count):
            for _ in range(attempts_per_sample):
                family = rng.choice(self.families)
                space = rng.choice([i for i, d in enumerate(self.designs) if d.family == family])
                sch = Schedule(self.mod, seed=rng.randrange(1, 2**31 - 1))
                try:
                    Trace(self.designs[space].trace.insts, {}).apply_to_schedule(sch, remove_postproc=True)
                except Exception:  # some random decisions are invalid: draw again
                    continue
                if not self._postprocess(sch):
                    continue
                out.append(self._candidate(space, sch))
                break
        return out

    def apply(self, candidate: Candidate, changes: dict) -> tuple[Candidate | None, str | None]:
        if not isinstance(changes, dict) or not changes:
            return None, "an edit must change at least one knob"
        space, reason = self._target_space(candidate, changes)
        if reason:
            return None, reason
        current = self.knobs(candidate)
        target = {s.knob.name: s.knob for s in self.designs[space].sites}
        for name, value in changes.items():
            if name == "space" or name == SKETCH or name in self.structural:
                continue
            if name not in target:
                where = "" if name not in current else f" of the design space the edit selects ({self.describe_space(space)})"
                return None, f"unknown knob {name!r}{where}"
            reason = validate(target[name], value)
            if reason:
                return None, reason
        values, repairs = {}, []
        for name, knob in target.items():
            if name in changes:
                values[name] = tuple(changes[name]) if isinstance(changes[name], list) else changes[name]
            elif name in candidate.values and validate(knob, _json(candidate.values[name])) is None:
                values[name] = candidate.values[name]
            else:
                values[name] = knob.value
                if name in candidate.values:
                    repairs.append(f"{name}: {_json(candidate.values[name])} does not fit "
                                   f"{self.describe_space(space)}; reset to {_json(knob.value)}")
        built, reason = self.build(space, values)
        if built is not None:
            built.repairs = tuple(repairs)
        return built, reason

    def preview(self, candidate: Candidate, changes: dict) -> dict[str, Knob] | None:
        """The knobs the design space selected by `changes` would have, with the values an edit
        would carry over from `candidate` (None if the changes select no design space)."""
        space, reason = self._target_space(candidate, changes)
        if reason:
            return None
        carried = {}
        for site in self.designs[space].sites:
            value = candidate.values.get(site.knob.name)
            keep = value is not None and validate(site.knob, _json(value)) is None
            carried[site.knob.name] = Knob(**{**site.knob.__dict__, "value": value if keep else site.knob.value})
        return {**self.structure_knobs(space), **carried}

    def describe_space(self, space: int) -> str:
        design = self.designs[space]
        if design.family == STOCK:
            return f"stock sketch {design.structure[SKETCH]}"
        return "micro " + ", ".join(f"{k}={_json(v)}" for k, v in design.structure.items()) if design.structure else "micro"

    def build(self, space: int, values: dict[str, Any]) -> tuple[Candidate | None, str | None]:
        """Replay design space `space` with these knob values; None and a reason if TVM rejects
        it, a postprocessor fails, or TVM applied something other than what was asked."""
        from tvm.s_tir import Schedule  # TVM: loaded on use (seconds to import)
        from tvm.s_tir.schedule import Trace  # TVM: loaded on use (seconds to import)

        trace = self.designs[space].trace
        decisions = {}
        for site in self.designs[space].sites:
            inst = trace.insts[site.index]
            value = values[site.knob.name]
            if site.knob.kind == CATEGORICAL:
                value = site.knob.choices.index(value)
            decisions[inst] = list(value) if site.knob.kind == TILE else value
        sch = Schedule(self.mod)
        try:
            Trace(trace.insts, decisions).apply_to_schedule(sch, remove_postproc=True)
        except Exception as e:  # TVM's own rejection of the decisions
            return None, f"TVM rejected the schedule: {last_line(e)}"
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
                for site, inst in zip(self.designs[space].sites, sample_insts)}

    def _candidate(self, space: int, sch) -> Candidate:
        import tvm_ffi  # TVM: loaded on use (seconds to import)

        return Candidate(space, self.values_from_trace(space, sch.trace), sch, int(tvm_ffi.structural_hash(sch.mod)))


def _json(value):
    return list(value) if isinstance(value, tuple) else value


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
