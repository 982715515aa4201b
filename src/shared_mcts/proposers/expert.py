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

from ..space.knobs import CATEGORICAL, TILE, Knob
from .base import Edit, Proposal, ProposalRequest

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
