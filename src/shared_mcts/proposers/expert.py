"""`expert`: hardware-aware tiling rules written from first principles, no search history.

MetaSchedule's CPU tiling (SSRSRS) orders loops as  S0 S1 R0 S2 R1 S3 : for C[i, j] += A[i, k] B[k, j]
that is  i0 j0 | i1 j1 | k0 | i2 j2 | k1 | i3 j3 . The innermost i3 x j3 block is the register
tile: j3 is vectorized (the block's last spatial loop is the contiguous one) and the
i3 x j3/lanes accumulators stay in vector registers for all k1 steps. i2 j2 and k1 size what
one k0 step touches (L1/L2); i0 j0 are fused and parallelized over the cores.

A recipe fixes (j3, i3, k1, j2, i2, j1, i1, unroll); the rules:
- j3 a multiple of the SIMD width; i3 so that i3 * j3 / lanes accumulators fit the register file
  (32 vector registers with AVX-512, 16 with AVX2; a few are kept for A and B);
- k1 such that the A and B panels of one register tile (i3*k1 + k1*j3 floats) fit in half of L1;
- the outer spatial tiles leave at least 2 x cores parallel iterations;
- blocks whose vector loop is strided in an input (Kᵀ in Q·Kᵀ) are left alone;
- loops other than the register-row and vector loops (batch, heads) stay outer, where they add
  parallelism; small reductions (3x3 windows) go fully inner.
Each call proposes the neighbours of the node's own recipe (one parameter moved), so the tree
turns the rules into a local search, plus the best base recipes while the node is unstructured.
"""

from __future__ import annotations

import math

from ..search.proposal import Edit, Proposal, ProposalRequest
from ..space.knobs import CATEGORICAL, TILE, Knob

OPTIONS = {
    "j3": (16, 32, 64, 8),
    "i3": (4, 8, 2, 16, 1),
    "k1": (8, 16, 4, 32, 2, 1),
    "j2": (1, 2, 4),
    "i2": (1, 2, 4),
    "j1": (1, 2, 4, 8),
    "i1": (1, 2, 4, 8),
    "unroll": (64, 16, 0),  # never 512: with register tiles it bloats code (90 s builds seen)
}


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, max(1, min(n, limit)) + 1) if n % d == 0)


class ExpertProposer:
    name = "expert"

    def __init__(self, hardware: dict):
        self.lanes = int(hardware.get("simd_lanes_fp32") or 16)
        self.registers = 32 if self.lanes >= 16 else 16
        self.l1 = int(hardware.get("l1d_bytes") or 32 * 1024)
        self.cores = int(hardware.get("cores") or 1)
        self.micro = MicroKernelRules(hardware)

    # -- what the rules allow ----------------------------------------------------------------

    def fits(self, recipe: dict) -> bool:
        accumulators = recipe["i3"] * max(recipe["j3"] // self.lanes, 1)
        panels = 4 * (recipe["i3"] * recipe["k1"] + recipe["k1"] * recipe["j3"])
        return accumulators <= self.registers - 4 and panels <= self.l1 // 2

    def base_recipes(self) -> list[dict]:
        out = []
        for j3 in OPTIONS["j3"]:
            for i3 in OPTIONS["i3"]:
                for k1 in (8, 16, 4):
                    r = dict(j3=j3, i3=i3, k1=k1, j2=1, i2=1, j1=2, i1=1, unroll=64)
                    if self.fits(r):
                        out.append(r)
        # Most register reuse first: more accumulators, then wider vectors.
        out.sort(key=lambda r: (-(r["i3"] * r["j3"]), -r["j3"], -r["k1"]))
        return out

    def neighbours(self, recipe: dict) -> list[dict]:
        out = []
        for key, options in OPTIONS.items():
            if recipe[key] not in options:
                continue
            i = options.index(recipe[key])
            for j in (i - 1, i + 1):
                if 0 <= j < len(options):
                    r = dict(recipe, **{key: options[j]})
                    if self.fits(r):
                        out.append(r)
        return out

    # -- reading and writing knobs -------------------------------------------------------------

    @staticmethod
    def _blocks(knobs: dict[str, Knob]) -> dict[str, list[Knob]]:
        blocks: dict[str, list[Knob]] = {}
        for knob in knobs.values():
            if knob.kind == TILE:
                blocks.setdefault(knob.block, []).append(knob)
        return blocks

    @staticmethod
    def _roles(tiles: list[Knob]) -> tuple[Knob | None, Knob | None]:
        """(vector loop, register-row loop) of one block."""
        spatial = [k for k in tiles if k.loop_kind == "spatial"]
        vector = next((k for k in spatial if k.innermost_spatial), None)
        rows = [k for k in spatial if k is not vector]
        row = max(rows, key=lambda k: (k.extent, rows.index(k))) if rows else None
        return vector, row

    def read_recipe(self, knobs: dict[str, Knob]) -> dict:
        """The recipe the node follows (from its largest block), snapped to the option lists."""
        blocks = self._blocks(knobs)
        if not blocks:
            return dict(self.base_recipes()[0])
        tiles = max(blocks.values(), key=lambda ks: math.prod(k.extent for k in ks))
        vector, row = self._roles(tiles)
        reductions = [k for k in tiles if k.loop_kind == "reduction" and k.extent > 8]
        raw = {
            "j3": vector.value[-1] if vector else 16, "j2": vector.value[-2] if vector else 1,
            "j1": vector.value[1] if vector else 1,
            "i3": row.value[-1] if row else 1, "i2": row.value[-2] if row else 1, "i1": row.value[1] if row else 1,
            "k1": reductions[0].value[-1] if reductions else 8,
            "unroll": next((k.value for k in knobs.values() if k.kind == CATEGORICAL and "unroll" in k.name), 64),
        }
        return {key: min(OPTIONS[key], key=lambda o: (abs(o - raw[key]), o)) for key in OPTIONS}

    def _spatial(self, knob: Knob, inner: int, second: int, third: int) -> tuple[int, ...]:
        inner = _largest_divisor_at_most(knob.extent, min(inner, knob.max_innermost or inner))
        rest = knob.extent // inner
        second = math.gcd(second, rest)
        rest //= second
        third = math.gcd(third, rest)
        rest //= third
        # Keep enough parallel iterations outside: move middle factors out if the outer loop is too short.
        while rest < 2 * self.cores and third > 1:
            third //= 2 if third % 2 == 0 else third
            rest = knob.extent // (inner * second * third)
        factors = (rest, third, second, inner)
        return factors[-knob.parts:] if knob.parts < 4 else factors

    def apply_recipe(self, knobs: dict[str, Knob], recipe: dict) -> dict:
        changes: dict = {}
        for tiles in self._blocks(knobs).values():
            vector, row = self._roles(tiles)
            if vector is not None and not vector.contiguous:
                continue  # no rule of ours fits a strided vector loop: leave this block to the search
            for knob in tiles:
                if knob.parts != 4 and knob.loop_kind == "spatial":
                    continue
                if knob is vector:
                    value = self._spatial(knob, recipe["j3"], recipe["j2"], recipe["j1"])
                elif knob is row:
                    value = self._spatial(knob, recipe["i3"], recipe["i2"], recipe["i1"])
                elif knob.loop_kind == "spatial":  # batch-like loops: all outer, for parallelism
                    value = (knob.extent,) + (1,) * (knob.parts - 1)
                elif knob.extent <= 8:  # small windows (3x3): fully inner
                    value = (1,) * (knob.parts - 1) + (knob.extent,)
                else:
                    inner = _largest_divisor_at_most(knob.extent, min(recipe["k1"], knob.max_innermost or 64))
                    value = (knob.extent // inner, inner)
                if tuple(value) != tuple(knob.value):
                    changes[knob.name] = list(value)
        for knob in knobs.values():
            if knob.kind == CATEGORICAL and "unroll" in knob.name and recipe["unroll"] in knob.choices and knob.value != recipe["unroll"]:
                changes[knob.name] = recipe["unroll"]
        return changes

    def propose(self, request: ProposalRequest) -> Proposal:
        if any(k.roles for k in request.knobs.values()):
            return self.micro.propose(request)
        space = request.knobs.get("space")
        if space is None or "micro" not in space.choices:
            return self._propose_stock(request)
        # A stock sketch in the widened space: first move it to the micro-kernel templates, then
        # the stock rules' own edits.
        move = Edit(self.micro.restructure(request, {"space": "micro"}),
                    "register micro-kernel templates: accumulators in registers, whole SIMD vectors, packed weights")
        rest = self._propose_stock(ProposalRequest(**{**request.__dict__, "k": max(request.k - 1, 0)}))
        return Proposal([move] + rest.edits, note="stock node: moved to the micro-kernel space first")

    def _propose_stock(self, request: ProposalRequest) -> Proposal:
        knobs = request.knobs
        current = self.read_recipe(knobs)
        structured = not self.apply_recipe(knobs, current)  # the node already follows its recipe
        local = self.neighbours(current)
        request.rng.shuffle(local)
        base = self.base_recipes()
        ordered = (local + base) if structured else (base[:2] + local + base[2:])
        edits, seen = [], set()
        for recipe in ordered:
            changes = self.apply_recipe(knobs, recipe)
            key = repr(sorted(changes.items()))
            if not changes or key in seen:
                continue
            seen.add(key)
            moved = [f"{k}={v}" for k, v in recipe.items() if v != current.get(k)]
            why = (f"register tile {recipe['i3']}x{recipe['j3']} ({recipe['i3'] * max(recipe['j3'] // self.lanes, 1)} "
                   f"accumulators), k1={recipe['k1']}, unroll {recipe['unroll']}")
            edits.append(Edit(changes, why + (f"; moved {', '.join(moved)}" if structured else "")))
            if len(edits) == request.k:
                break
        return Proposal(edits, note="" if structured else "node did not follow a recipe: base recipes first")


# -- the micro-kernel space (space/microkernel.py) -----------------------------------------------

FMA_LATENCY_CYCLES = 4  # fp32 FMA latency on every x86 core this runs on (Skylake-X to Zen 5)
MICRO_OPTIONS = {
    "rows": (4, 6, 8, 2, 3, 12, 16, 1),
    "vectors": (4, 2, 3, 1, 6, 8),
    "k_inner": (4, 8, 2, 16, 1),
    "row_block": (1, 2, 4, 8),
    "vector_block": (1, 2, 4),
}


class MicroKernelRules:
    """How a register micro-kernel should look on this CPU, derived from its facts:

    - accumulators = rows x vectors must cover FMA latency x FMA units (each accumulator is
      updated once per reduction step; fewer than that leaves the FMA pipes idle), and together
      with the vectors' loads and one broadcast they must fit the vector register file (32 zmm
      with AVX-512, 16 otherwise), or they spill;
    - per reduction step the kernel loads `vectors` streamed vectors and `rows` broadcasts for
      rows x vectors FMAs: more FMAs per load is better while registers last;
    - the broadcast panel (rows x the unrolled reduction) sits in L1; the streamed panel (vectors x
      lanes x the reduction) in L2, kept there by the cache block;
    - parallel outer tiles: at least two per core, in multiples of the core count;
    - structure: the first listed layout (no in-kernel packing, output contiguous) and
      materialized elementwise producers (an inlined one is recomputed for every output panel).
    """

    def __init__(self, hardware: dict):
        self.lanes = int(hardware.get("simd_lanes_fp32") or 16)
        self.registers = 32 if self.lanes >= 16 else 16
        self.fma_units = int(hardware.get("fma_units") or 2)
        self.l1 = int(hardware.get("l1d_bytes") or 32 * 1024)
        self.l2 = int(hardware.get("l2_bytes") or 1024 * 1024)
        self.cores = int(hardware.get("cores") or 1)

    def fits(self, rows: int, vectors: int) -> bool:
        accumulators = rows * vectors
        return (accumulators >= min(self.fma_units * FMA_LATENCY_CYCLES, 8)
                and accumulators + vectors + 1 <= self.registers - 2)

    def recipes(self) -> list[dict]:
        """Register tiles that fit, best first: most FMAs per load, then fewer rows (rows of the
        broadcast operand far apart alias in L1), then the FMA-latency rule."""
        out = []
        for rows in MICRO_OPTIONS["rows"]:
            for vectors in MICRO_OPTIONS["vectors"]:
                if self.fits(rows, vectors):
                    out.append({"rows": rows, "vectors": vectors, "k_inner": 4, "row_block": 1, "vector_block": 1})
        out.sort(key=lambda r: (-(r["rows"] * r["vectors"]) / (r["rows"] + r["vectors"]), r["rows"]))
        return out

    def neighbours(self, recipe: dict) -> list[dict]:
        out = []
        for key, options in MICRO_OPTIONS.items():
            for value in options:
                if value == recipe[key]:
                    continue
                moved = dict(recipe, **{key: value})
                if self.fits(moved["rows"], moved["vectors"]):
                    out.append(moved)
        # Nearest values first (options are listed by preference, not by size).
        out.sort(key=lambda r: sum(abs(math.log2(r[k] or 1) - math.log2(recipe[k] or 1)) for k in recipe))
        return out

    @staticmethod
    def _tiles(knobs: dict[str, Knob]) -> dict[str, dict[str, list[Knob]]]:
        """block -> {"vector": [knob], "row": [knob], "reduce": [knobs]} of the micro space's tiles."""
        blocks: dict[str, dict[str, list[Knob]]] = {}
        for knob in knobs.values():
            if knob.kind != TILE or not knob.roles:
                continue
            last = knob.roles[-1]
            role = "vector" if last.startswith("register vectors") else "row" if last == "register rows" else "reduce"
            blocks.setdefault(knob.block, {"vector": [], "row": [], "reduce": []})[role].append(knob)
        return blocks

    def read(self, knobs: dict[str, Knob]) -> dict | None:
        """The recipe the node's largest contraction follows (None if the node is not a micro one)."""
        blocks = self._tiles(knobs)
        if not blocks:
            return None
        tiles = max(blocks.values(), key=lambda t: math.prod(k.extent for ks in t.values() for k in ks))
        if not tiles["vector"] or not tiles["row"]:
            return None
        vector, row = tiles["vector"][0].value, tiles["row"][0].value
        big = [k.value[-1] for k in tiles["reduce"] if k.extent > 8]
        raw = {"rows": row[-1], "vectors": vector[-1], "k_inner": big[0] if big else 4, "row_block": row[1],
               "vector_block": vector[1]}
        return {k: min(MICRO_OPTIONS[k], key=lambda o: (abs(o - raw[k]), o)) for k in MICRO_OPTIONS}

    def _split(self, knob: Knob, inner: int, block: int) -> tuple[int, int, int]:
        inner = _largest_divisor_at_most(knob.extent, min(inner, knob.max_innermost or inner))
        rest = knob.extent // inner
        block = math.gcd(block, rest)
        return rest // block, block, inner

    def apply(self, knobs: dict[str, Knob], recipe: dict) -> dict:
        changes: dict = {}
        for tiles in self._tiles(knobs).values():
            values: dict[str, tuple] = {}
            for knob in tiles["vector"]:
                values[knob.name] = self._split(knob, recipe["vectors"], recipe["vector_block"])
            for knob in tiles["row"]:
                values[knob.name] = self._split(knob, recipe["rows"], recipe["row_block"])
            self._balance(values, tiles)
            for knob in tiles["reduce"]:
                if knob.extent <= 8:  # small windows (3x3): fully unrolled inside
                    values[knob.name] = (1, knob.extent)
                else:
                    inner = _largest_divisor_at_most(knob.extent, min(recipe["k_inner"], knob.max_innermost or 16))
                    values[knob.name] = (knob.extent // inner, inner)
            for knob in (k for ks in tiles.values() for k in ks):
                if tuple(values[knob.name]) != tuple(knob.value):
                    changes[knob.name] = list(values[knob.name])
        return changes

    def _balance(self, values: dict, tiles: dict) -> None:
        """Move cache-block factors outward until the parallel loops (row and vector outer
        factors) give every core at least two tiles, in multiples of the core count if possible."""
        names = [k.name for k in tiles["row"] + tiles["vector"]]
        for _ in range(8):
            outer = math.prod(values[n][0] for n in names)
            if outer >= 2 * self.cores and outer % self.cores == 0:
                return
            name = max(names, key=lambda n: values[n][1])
            parallel, block, inner = values[name]
            if block == 1:
                return
            factor = min(p for p in range(2, block + 1) if block % p == 0)
            values[name] = (parallel * factor, block // factor, inner)

    def structure(self, knobs: dict[str, Knob]) -> dict:
        """The structural values these rules prefer, where they differ from the node's."""
        wanted = {}
        for knob in knobs.values():
            if knob.kind != "structure" or knob.name == "stock/sketch":
                continue
            preferred = True if knob.name.endswith("/materialize") else knob.choices[0]
            if knob.value != preferred:
                wanted[knob.name] = preferred
        return wanted

    def propose(self, request: ProposalRequest) -> Proposal:
        knobs = request.knobs
        edits, seen = [], set()

        def add(changes: dict, why: str) -> None:
            key = repr(sorted(changes.items()))
            if changes and key not in seen and len(edits) < request.k:
                seen.add(key)
                edits.append(Edit(changes, why))

        structure = self.structure(knobs)
        if structure:
            add(self.restructure(request, structure),
                "structure these rules prefer: " + ", ".join(f"{k}={v}" for k, v in structure.items()))
        current = self.read(knobs)
        base = self.recipes()
        structured = current is not None and not self.apply(knobs, current)
        local = self.neighbours(current) if current is not None else []
        request.rng.shuffle(local)
        ordered = (local + base) if structured else (base[:2] + local + base[2:])
        for recipe in ordered:
            changes = self.apply(knobs, recipe)
            accumulators = recipe["rows"] * recipe["vectors"]
            add(changes, f"register tile {recipe['rows']} rows x {recipe['vectors']} vectors of {self.lanes} lanes "
                         f"({accumulators} accumulators, {recipe['rows'] + recipe['vectors']} loads per "
                         f"{accumulators} FMAs), reduction unrolled {recipe['k_inner']}, blocks "
                         f"{recipe['row_block']}x{recipe['vector_block']}")
        return Proposal(edits, note="" if structured else "node did not follow a recipe: base recipes first")

    def restructure(self, request: ProposalRequest, changes: dict) -> dict:
        """`changes` (structural) plus the rest of the preferred structure and the best register
        tile for the design space they select, so that the move lands on a good kernel rather
        than on that space's arbitrary tile values."""
        target = request.preview(changes)
        if target is None:
            return changes
        changes = {**changes, **self.structure(target)}
        target = request.preview(changes) or target
        return {**changes, **self.apply(target, self.read(request.knobs) or self.recipes()[0])}
