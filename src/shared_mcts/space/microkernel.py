"""The structural design space: register micro-kernels, packed operands, fusion choices.

MetaSchedule's default CPU sketch keeps the accumulator in a large buffer, never forces the
innermost tile to whole SIMD vectors, never packs weights and inlines elementwise producers into
GEMMs. The template here writes, for every contraction (blocks.py), the schedule a hand-written
kernel uses:

    parallel(other spatial, row0, vec0)      outer tiles spread over the cores
      row1, vec1                             a block of micro-tiles sharing cached operands
        acc[rows x vectors*lanes] = 0        the accumulator: small enough to stay in registers
        for k0 ...                           reduction, outside the micro-tile
          for k1 ... (unrolled)
            for r in rows (unrolled)         broadcast one value of the broadcast operand
              for v in vectors (unrolled)    FMA with one vector load of the streamed operand
                lanes (vectorized)
        write acc back

Every size is a `sample_perfect_tile` decision (a knob the models edit, and a decision
MetaSchedule's mutators can change); every structural choice (which iterator is vectorized,
whether an elementwise producer is materialized) is fixed per design space and named by a
structural knob. Weights declared layout-free are packed by MetaSchedule's own RewriteLayout
postprocessor in the order this loop nest reads them; a parameter that is strided along the
vector iterator (K in Q·Kᵀ) is copied into a packed buffer inside the kernel.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .blocks import BlockAnalysis, Contraction, MicroLayout

MAX_REGISTER_ROWS = 16
MAX_REGISTER_VECTORS = 8
MAX_INNER_REDUCTION = 16

# Structural knob names: f"{block}/{suffix}".
VECTOR, MATERIALIZE = "vector", "materialize"


@dataclass(frozen=True)
class TileSite:
    """What one sampled tile means, in the order the template samples them."""

    name: str
    roles: tuple[str, ...]
    lanes: int = 1  # the vector tile's last factor counts vectors of this many lanes


@dataclass(frozen=True)
class StructuralChoice:
    name: str
    choices: tuple
    description: str


def _layout_words(contraction: Contraction, layout: MicroLayout) -> str:
    pack = ""
    if layout.needs_packing:
        pack = (" (packed once outside the kernel: a weight)" if layout.streamed.weight
                else " (copied into a packed buffer inside the kernel)")
    return (f"'{layout.vector}': vector loads of {layout.streamed.buffer}{pack}, one broadcast of "
            f"{layout.broadcast.buffer} per register row along '{layout.row}'")


def structural_choices(analysis: BlockAnalysis) -> list[StructuralChoice]:
    """The structural knobs of a workload (first choice = default)."""
    out = []
    for name, contraction in analysis.contractions.items():
        layouts = contraction.layouts()
        if len(layouts) > 1:
            words = "; ".join(_layout_words(contraction, lay) for lay in layouts)
            out.append(StructuralChoice(f"{name}/{VECTOR}", tuple(lay.vector for lay in layouts),
                                        f"which output iterator of '{name}' the register micro-kernel spreads over "
                                        f"SIMD lanes: {words}"))
    for name in analysis.injective:
        feeds = analysis.contractions_fed_by(name)
        if feeds:
            out.append(StructuralChoice(f"{name}/{MATERIALIZE}", (True, False),
                                        f"elementwise block '{name}': true = computed once into its own buffer by a "
                                        f"parallel vectorized pass; false = inlined into {', '.join(feeds)} "
                                        "(recomputed wherever it is read)"))
    return sorted(out, key=lambda c: c.name)


def all_structures(analysis: BlockAnalysis) -> list[dict]:
    choices = structural_choices(analysis)
    return [dict(zip((c.name for c in choices), values)) for values in itertools.product(*(c.choices for c in choices))]


def _layout(contraction: Contraction, structure: dict) -> MicroLayout:
    layouts = contraction.layouts()
    wanted = structure.get(f"{contraction.block}/{VECTOR}", layouts[0].vector)
    return next(lay for lay in layouts if lay.vector == wanted)


def _lanes_for(extent: int, lanes: int) -> int:
    while lanes > 1 and extent % lanes:
        lanes //= 2
    return lanes


def apply_structure(sch, analysis: BlockAnalysis, structure: dict, lanes: int) -> list[TileSite]:
    """Schedule every block of `sch` (a fresh, traced Schedule of the workload) the structural
    way; returns the meaning of each tile decision, in sampling order."""
    sites: list[TileSite] = []
    materialized = []
    for name in analysis.order:
        if name not in analysis.injective:
            continue
        # Elementwise blocks that feed a contraction have a knob (default: its first choice,
        # materialize); the others are always inlined.
        if structure.get(f"{name}/{MATERIALIZE}", bool(analysis.contractions_fed_by(name))):
            materialized.append(name)
        else:
            sch.compute_inline(sch.get_sblock(name))
    for name in analysis.order:
        if name in analysis.contractions:
            sites += _micro_kernel(sch, analysis.contractions[name], _layout(analysis.contractions[name], structure), lanes)
        elif name in materialized or name in analysis.others:
            _parallel_outer(sch, name, lanes, vectorize=name in materialized)
    return sites


def _parallel_outer(sch, name: str, lanes: int, vectorize: bool) -> None:
    """A simple schedule for blocks that are not contractions: leading spatial loops fused and
    parallel, the last loop vectorized when it is spatial and splits into whole vectors."""
    block = sch.get_sblock(name)
    loops = sch.get_loops(block)
    node = sch.get(block)
    spatial = [i for i, iv in enumerate(node.iter_vars) if int(iv.iter_type) == 0]
    lead = 0
    while lead < len(loops) and lead in spatial:
        lead += 1
    if vectorize and lead == len(loops) and len(loops) >= 2:
        extent = int(node.iter_vars[-1].dom.extent)
        width = _lanes_for(extent, lanes)
        if width > 1:
            _, inner = sch.split(loops[-1], [None, width])
            sch.vectorize(inner)
        lead -= 1
    if lead >= 1:
        fused = sch.fuse(*loops[:lead]) if lead > 1 else loops[0]
        sch.parallel(fused)


def _move_last(sch, block, buffer, dims: tuple, var: str) -> None:
    """Re-lay a buffer so that the index that `var` moves becomes the last (unit-stride) one."""
    moved = next(i for i, d in enumerate(dims) if var in d)
    order = [i for i in range(len(dims)) if i != moved] + [moved]
    sch.transform_layout(block, buffer, lambda *idx: [idx[i] for i in order])


def _pack_in_kernel(sch, block, layout: MicroLayout) -> None:
    """Copy the streamed parameter into a buffer whose last index is the vector iterator, so the
    micro-kernel reads whole vectors (the copy is part of the kernel and of its timing)."""
    node = sch.get(block)
    index = next(i for i, r in enumerate(node.reads) if str(r.source.name) == layout.streamed.buffer)
    copy = sch.cache_read(block, index, "global", consumer_blocks=[block])
    _move_last(sch, block, ("read", index), layout.streamed.dims, layout.vector)
    loops = sch.get_loops(copy)
    fused = sch.fuse(*loops[:-1]) if len(loops) > 2 else loops[0]
    sch.parallel(fused)


def _micro_kernel(sch, contraction: Contraction, layout: MicroLayout, lanes: int) -> list[TileSite]:
    block = sch.get_sblock(contraction.block)
    if layout.needs_packing and not layout.streamed.weight:
        _pack_in_kernel(sch, block, layout)
    iters = contraction.spatial + contraction.reduction
    loops = dict(zip(iters, sch.get_loops(block)))
    name = contraction.block
    sites = []

    vector_lanes = _lanes_for(contraction.extents[layout.vector], lanes)
    vec = loops[layout.vector]
    if vector_lanes > 1:
        vec, lane = sch.split(vec, [None, vector_lanes])
    else:
        lane = None
    v0, v1, v2 = sch.split(vec, sch.sample_perfect_tile(vec, n=3, max_innermost_factor=MAX_REGISTER_VECTORS))
    sites.append(TileSite(f"{name}/{layout.vector}/tile", ("parallel", "cache block", f"register vectors of {vector_lanes} lanes"),
                          vector_lanes))
    row = loops[layout.row]
    r0, r1, r2 = sch.split(row, sch.sample_perfect_tile(row, n=3, max_innermost_factor=MAX_REGISTER_ROWS))
    sites.append(TileSite(f"{name}/{layout.row}/tile", ("parallel", "cache block", "register rows")))
    outer_k, inner_k = [], []
    for k in contraction.reduction:
        k0, k1 = sch.split(loops[k], sch.sample_perfect_tile(loops[k], n=2, max_innermost_factor=MAX_INNER_REDUCTION))
        sites.append(TileSite(f"{name}/{k}/tile", ("outer", "unrolled inner")))
        outer_k.append(k0)
        inner_k.append(k1)
    others = [loops[s] for s in contraction.spatial if s not in (layout.vector, layout.row)]
    order = others + [r0, v0, r1, v1] + outer_k + inner_k + [r2, v2] + ([lane] if lane is not None else [])
    sch.reorder(*order)
    accumulator = sch.cache_write(block, 0, "global")
    if not contraction.output.contiguous_along(layout.vector):
        # Lanes must be adjacent in the accumulator too (NCHW output, channels vectorized): the
        # register tile is stored vector-last and transposed once on write-back.
        _move_last(sch, block, ("write", 0), contraction.output.dims, layout.vector)
    sch.reverse_compute_at(accumulator, v1)
    fused = sch.fuse(*others, r0, v0)
    sch.parallel(fused)
    for loop in inner_k + [r2, v2]:
        sch.unroll(loop)
    if lane is not None:
        sch.vectorize(lane)
    sch.decompose_reduction(block, outer_k[0])
    # The write-back is left to LLVM's vectorizer: asking for its loops would record their number
    # in the trace, which changes when a tile factor is 1 and breaks replaying other decisions.
    return sites
