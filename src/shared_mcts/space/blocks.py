"""What each block of a PrimFunc computes, read from its iteration structure (never from names).

A *contraction* is a block `O[s...] = O[s...] + X[...] * Y[...]` with spatial iterators s and at
least one reduction iterator: GEMMs, batched matmuls, convolutions. For each of them we list
the register micro-kernel layouts that make sense: a *vector* spatial iterator that exactly one
operand (the streamed one) depends on, and a *row* spatial iterator that only the other
(broadcast) operand depends on. The micro-kernel then keeps rows x vector-lanes accumulators in
registers and, for each reduction step, broadcasts one value of the broadcast operand per row
into an FMA with one vector load of the streamed operand.

An *injective* block computes each output element from inputs without reduction (h = gate * up,
the conv's zero padding): it can be inlined into its consumer or materialized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DATA_PAR, COMM_REDUCE = 0, 2  # tvm IterVar iter_type values


@dataclass(frozen=True)
class Operand:
    buffer: str
    dims: tuple[frozenset[str], ...]  # iterators each index of the access uses
    param: int | None  # position among the PrimFunc's parameters, None for an intermediate buffer
    weight: bool  # declared layout-free (a constant packed once, outside the timed kernel)

    def uses(self, var: str) -> bool:
        return any(var in d for d in self.dims)

    def contiguous_along(self, var: str) -> bool:
        """`var` moves only the last index (unit stride), so lanes along it are one vector load."""
        return bool(self.dims) and var in self.dims[-1] and not any(var in d for d in self.dims[:-1])


@dataclass(frozen=True)
class MicroLayout:
    """One way to lay a register micro-kernel over a contraction."""

    vector: str  # spatial iterator spread over SIMD lanes
    row: str  # spatial iterator unrolled over register rows
    streamed: Operand  # depends on `vector`: one vector load per reduction step
    broadcast: Operand  # independent of `vector`: one scalar broadcast per row

    @property
    def needs_packing(self) -> bool:
        """The streamed operand is strided along the vector iterator: only a packed copy gives
        vector loads (free for weights, which RewriteLayout packs once; in-kernel otherwise)."""
        return not self.streamed.contiguous_along(self.vector)


@dataclass(frozen=True)
class Contraction:
    block: str
    spatial: tuple[str, ...]  # iterator names in loop order
    reduction: tuple[str, ...]
    extents: dict = field(hash=False, compare=False)  # iterator name -> extent
    output: Operand
    operands: tuple[Operand, Operand]

    def layouts(self, limit: int = 2) -> list[MicroLayout]:
        """The micro-kernel layouts worth trying, best first (at most `limit`, to keep the number
        of structures small): a vector iterator with room for SIMD lanes, whose streamed operand is
        contiguous along it or can be packed (weights: once, outside the kernel; other parameters:
        in the kernel); an intermediate buffer that would need packing is left out."""
        out = []
        for vector in self.spatial:
            if self.extents[vector] < 4:
                continue
            for streamed, broadcast in (self.operands, self.operands[::-1]):
                if not streamed.uses(vector) or broadcast.uses(vector):
                    continue
                if not streamed.contiguous_along(vector) and streamed.param is None:
                    continue
                rows = [r for r in self.spatial if r != vector and broadcast.uses(r) and not streamed.uses(r)
                        and self.extents[r] > 1]
                if rows:  # the innermost such row: neighbouring rows read neighbouring broadcast values
                    out.append(MicroLayout(vector, rows[-1], streamed, broadcast))
        out.sort(key=lambda lay: (lay.needs_packing and not lay.streamed.weight,
                                  not self.output.contiguous_along(lay.vector)))
        return out[:limit]


@dataclass(frozen=True)
class Injective:
    block: str
    consumers: tuple[str, ...]


@dataclass
class BlockAnalysis:
    contractions: dict[str, Contraction]
    injective: dict[str, Injective]
    others: list[str]  # reductions that are not contractions (softmax max/sum), and anything else
    order: list[str]  # every block, in program order

    def contractions_fed_by(self, name: str) -> list[str]:
        """The contractions that read the elementwise block `name` (those it could be inlined into)."""
        return [c for c in self.injective[name].consumers if c in self.contractions]


def _vars_in(expr) -> frozenset[str]:
    """Names of the variables an index expression uses (affine index arithmetic only)."""
    from tvm import tirx  # TVM: loaded on use (seconds to import)

    found: set[str] = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, tirx.Var):
            found.add(str(e.name))
        for attr in ("a", "b", "value"):
            child = getattr(e, attr, None)
            if child is not None and not isinstance(child, (int, float, str)):
                stack.append(child)
    return frozenset(found)


def _loads(expr) -> list:
    """Every buffer load in an expression."""
    out, stack = [], [expr]
    while stack:
        e = stack.pop()
        if hasattr(e, "indices") and hasattr(e, "source"):
            out.append(e)
            continue
        for attr in ("a", "b", "value", "condition", "true_value", "false_value"):
            child = getattr(e, attr, None)
            if child is not None and not isinstance(child, (int, float, str)):
                stack.append(child)
        for arg in getattr(e, "args", ()) or ():
            stack.append(arg)
    return out


def _strip(name: str) -> str:
    return name[2:] if name.startswith("v_") else name


def _access(load_or_store, params: dict[str, int], weights: frozenset[int]) -> Operand:
    """An operand (or the output) of a contraction, from its buffer access."""
    buffer = str(load_or_store.buffer.name if hasattr(load_or_store, "buffer") else load_or_store.source.name)
    param = params.get(buffer)
    dims = tuple(frozenset(_strip(v) for v in _vars_in(index)) for index in load_or_store.indices)
    return Operand(buffer, dims, param, param is not None and param in weights)


def _contraction(name: str, block, params: dict[str, int], weights: frozenset[int]) -> Contraction | None:
    """The block as a contraction `O[s] = O[s] + X[..] * Y[..]`, or None if it is not one."""
    from tvm import tirx  # TVM: loaded on use (seconds to import)

    kinds = {_strip(str(iv.var.name)): int(iv.iter_type) for iv in block.iter_vars}
    extents = {_strip(str(iv.var.name)): int(iv.dom.extent) for iv in block.iter_vars}
    spatial = tuple(v for v, k in kinds.items() if k == DATA_PAR)
    reduction = tuple(v for v, k in kinds.items() if k == COMM_REDUCE)
    body = block.body
    if not (reduction and block.init is not None and isinstance(body, tirx.BufferStore)
            and len(kinds) == len(spatial) + len(reduction) and isinstance(body.value, tirx.Add)):
        return None
    for accumulated, product in ((body.value.a, body.value.b), (body.value.b, body.value.a)):
        if (isinstance(product, tirx.Mul) and hasattr(accumulated, "source")
                and str(accumulated.source.name) == str(body.buffer.name) and len(_loads(product)) == 2
                and all(hasattr(side, "source") for side in (product.a, product.b))):
            operands = (_access(product.a, params, weights), _access(product.b, params, weights))
            return Contraction(name, spatial, reduction, extents, _access(body, params, frozenset()), operands)
    return None


def analyze(func, weights: frozenset[int] = frozenset()) -> BlockAnalysis:
    """Classify the blocks of an unscheduled PrimFunc. `weights`: parameter positions declared
    layout-free (constants such as model weights)."""
    from tvm import tirx  # TVM: loaded on use (seconds to import)
    from tvm.s_tir import Schedule  # TVM: loaded on use (seconds to import)

    params = {str(p.name): i for i, p in enumerate(func.params)}
    sch = Schedule(func)
    names = _block_names(func)
    blocks = {name: sch.get(sch.get_sblock(name)) for name in names}
    readers: dict[str, list[str]] = {}
    for name, block in blocks.items():
        for region in block.reads:
            readers.setdefault(str(region.source.name), []).append(name)
    contractions, injective, others = {}, {}, []
    for name, block in blocks.items():
        consumers = sorted({c for w in block.writes for c in readers.get(str(w.source.name), []) if c != name})
        contraction = _contraction(name, block, params, weights)
        is_reduction = any(int(iv.iter_type) == COMM_REDUCE for iv in block.iter_vars)
        if contraction is not None and contraction.layouts():
            contractions[name] = contraction
        elif not is_reduction and isinstance(block.body, tirx.BufferStore) and consumers:
            injective[name] = Injective(name, tuple(consumers))
        else:
            others.append(name)
    return BlockAnalysis(contractions, injective, others, names)


def _block_names(func) -> list[str]:
    """Names of the blocks under the root, in program order."""

    return [m for m in re.findall(r'T\.sblock\("([^"]+)"\)', func.script()) if m != "root"]
