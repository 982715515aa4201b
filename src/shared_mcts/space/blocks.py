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
    extents: dict = field(hash=False, compare=False)
    output: Operand = None  # type: ignore[assignment]
    operands: tuple[Operand, Operand] = None  # type: ignore[assignment]

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


def analyze(func, weights: frozenset[int] = frozenset()) -> BlockAnalysis:
    """Classify the blocks of an unscheduled PrimFunc. `weights`: parameter positions declared
    layout-free (constants such as model weights)."""
    from tvm import tirx  # TVM: loaded on use (seconds to import)
    from tvm.s_tir import Schedule  # TVM: loaded on use (seconds to import)

    params = {}
    for i, p in enumerate(func.params):
        params[str(p.name)] = i
    sch = Schedule(func)
    names = _block_names(func)
    contractions, injective, others = {}, {}, []
    consumers: dict[str, list[str]] = {}
    writes_of = {}
    for name in names:
        block = sch.get(sch.get_sblock(name))
        writes_of[name] = {str(w.source.name) for w in block.writes}
    readers: dict[str, list[str]] = {}
    for name in names:
        block = sch.get(sch.get_sblock(name))
        for r in block.reads:
            readers.setdefault(str(r.source.name), []).append(name)
    for name in names:
        consumers[name] = sorted({c for buf in writes_of[name] for c in readers.get(buf, []) if c != name})
    for name in names:
        block = sch.get(sch.get_sblock(name))
        kinds = {_strip(str(iv.var.name)): int(iv.iter_type) for iv in block.iter_vars}
        extents = {_strip(str(iv.var.name)): int(iv.dom.extent) for iv in block.iter_vars}
        spatial = tuple(v for v, k in kinds.items() if k == DATA_PAR)
        reduction = tuple(v for v, k in kinds.items() if k == COMM_REDUCE)
        body = block.body
        contraction = None
        if reduction and block.init is not None and isinstance(body, tirx.BufferStore) and len(kinds) == len(spatial) + len(reduction):
            value = body.value
            if isinstance(value, tirx.Add):
                for acc, prod in ((value.a, value.b), (value.b, value.a)):
                    loads = _loads(prod)
                    if (isinstance(prod, tirx.Mul) and hasattr(acc, "source") and str(acc.source.name) == str(body.buffer.name)
                            and len(loads) == 2 and all(hasattr(side, "source") for side in (prod.a, prod.b))):
                        def operand(load):
                            buf = str(load.source.name)
                            param = params.get(buf)
                            dims = tuple(frozenset(_strip(v) for v in _vars_in(ix)) for ix in load.indices)
                            return Operand(buf, dims, param, param is not None and param in weights)

                        out = Operand(str(body.buffer.name), tuple(frozenset(_strip(v) for v in _vars_in(ix)) for ix in body.indices),
                                      params.get(str(body.buffer.name)), False)
                        contraction = Contraction(name, spatial, reduction, extents, out, (operand(prod.a), operand(prod.b)))
                        break
        if contraction is not None and contraction.layouts():
            contractions[name] = contraction
        elif not reduction and isinstance(body, tirx.BufferStore) and consumers[name]:
            injective[name] = Injective(name, tuple(consumers[name]))
        else:
            others.append(name)
    return BlockAnalysis(contractions, injective, others, names)


def _block_names(func) -> list[str]:
    """Names of the blocks under the root, in program order."""

    return [m for m in re.findall(r'T\.sblock\("([^"]+)"\)', func.script()) if m != "root"]
