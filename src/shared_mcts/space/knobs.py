"""Tunable knobs with stable, readable names, and the validation TVM does not do.

TVM silently repairs invalid tile factors and does not enforce max_innermost_factor for given
decisions, so every proposed value is checked here before anything is applied. Pure: no TVM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

TILE, CATEGORICAL, COMPUTE_LOCATION, SPACE = "tile", "categorical", "compute_location", "space"
STRUCTURE = "structure"  # a structural choice: which design space (micro-kernel layout, fusion) a candidate uses


@dataclass(frozen=True)
class Knob:
    name: str  # e.g. "gate/i/tile", "root/unroll", "pad/compute_at", "space"
    kind: str
    value: Any
    block: str = ""
    loop: str = ""
    extent: int = 0  # tile: product of the factors
    parts: int = 0  # tile: number of factors
    max_innermost: int = 0  # tile: largest allowed innermost factor
    loop_kind: str = ""  # tile: "spatial" or "reduction"
    innermost_spatial: bool = False  # tile: the block's last spatial loop (the one vectorized)
    contiguous: bool = True  # tile, innermost spatial: contiguous in every input it indexes
    choices: tuple = field(default_factory=tuple)  # categorical / space / structure: allowed values
    roles: tuple = ()  # tile: what each factor is (e.g. "parallel", "cache block", "register rows")
    lanes: int = 0  # tile of a vectorized loop in the micro-kernel space: the last factor counts vectors of this many lanes
    description: str = ""  # structure: what the choice means, in words a model can act on

    def constraints(self) -> str:
        """What the knob is and which values it allows (not its current value)."""
        if self.kind == TILE and self.roles:
            unit = f" (loop '{self.loop}' is first split into vectors of {self.lanes} lanes)" if self.lanes > 1 else ""
            return (f"tile {self.loop_kind} loop '{self.loop}' of block '{self.block}'{unit}: {self.parts} factors "
                    f"({', '.join(self.roles)}) whose product is {self.extent}, last <= {self.max_innermost}")
        if self.kind == TILE:
            return (f"split {self.loop_kind} loop '{self.loop}' of block '{self.block}' "
                    f"(extent {self.extent}) into {self.parts} factors whose product is {self.extent}, "
                    f"innermost <= {self.max_innermost}" + (", innermost factor is vectorized" if self.innermost_spatial else "")
                    + ("" if self.contiguous else " (strided in an input: vectorizing it gathers)"))
        if self.kind == STRUCTURE:
            return f"{self.description}; one of {list(self.choices)}"
        if self.kind == CATEGORICAL:
            return f"one of {list(self.choices)}"
        if self.kind == COMPUTE_LOCATION:
            return (f"where block '{self.block}' is computed: -2 inlined, -1 at the root, "
                    f"i >= 0 under the i-th loop of its consumer")
        return f"{self.description or 'design-space structure'}; one of {list(self.choices)}"

    def json_value(self):
        return list(self.value) if isinstance(self.value, tuple) else self.value



def validate(knob: Knob, value: Any) -> str | None:
    """None if `value` is allowed for `knob`, else the reason it is not."""
    if knob.kind == TILE:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return f"{knob.name}: expected a list of {knob.parts} integers"
        if len(value) != knob.parts:
            return f"{knob.name}: expected {knob.parts} factors, got {len(value)}"
        if any(v < 1 for v in value):
            return f"{knob.name}: factors must be positive"
        if math.prod(value) != knob.extent:
            return f"{knob.name}: factors multiply to {math.prod(value)}, not the loop extent {knob.extent}"
        if knob.max_innermost and value[-1] > knob.max_innermost:
            return f"{knob.name}: innermost factor {value[-1]} exceeds {knob.max_innermost}"
        return None
    if knob.kind in (CATEGORICAL, SPACE, STRUCTURE):
        # `True in (1, 0)` holds in Python: a structural boolean must really be a boolean.
        if value in knob.choices and all(type(value) is type(c) for c in knob.choices if c == value):
            return None
        return f"{knob.name}: {value!r} is not one of {list(knob.choices)}"
    if knob.kind == COMPUTE_LOCATION:
        if not isinstance(value, int) or isinstance(value, bool) or value < -2:
            return f"{knob.name}: expected an integer >= -2"
        return None
    return f"{knob.name}: unknown knob kind {knob.kind}"


def validate_edit(knobs: dict[str, Knob], changes: dict) -> str | None:
    if not isinstance(changes, dict) or not changes:
        return "an edit must change at least one knob"
    for name, value in changes.items():
        if name not in knobs:
            return f"unknown knob {name!r}"
        reason = validate(knobs[name], value)
        if reason:
            return reason
    return None


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def random_tile(knob: Knob, rng) -> tuple[int, ...]:
    """A uniformly drawn perfect tiling of knob.extent into knob.parts factors, respecting the
    innermost limit (as SamplePerfectTile would draw it)."""
    for _ in range(100):
        rest, factors = knob.extent, []
        for _ in range(knob.parts - 1):
            f = rng.choice(divisors(rest))
            factors.append(f)
            rest //= f
        factors.append(rest)
        rng.shuffle(factors)
        if not knob.max_innermost or factors[-1] <= knob.max_innermost:
            return tuple(factors)
    return (knob.extent // 1,) + (1,) * (knob.parts - 1)


def random_value(knob: Knob, rng):
    """A different allowed value for the knob, drawn at random (None if there is none)."""
    if knob.kind == TILE:
        for _ in range(20):
            value = random_tile(knob, rng)
            if value != tuple(knob.value):
                return value
        return None
    if knob.kind in (CATEGORICAL, SPACE, STRUCTURE):
        others = [c for c in knob.choices if c != knob.value]
        return rng.choice(others) if others else None
    if knob.kind == COMPUTE_LOCATION:
        return rng.choice([v for v in (-2, -1, 0, 1, 2, 3, knob.value + 1, knob.value - 1) if v >= -2 and v != knob.value])
    return None


def _prime_factors(n: int) -> list[int]:
    out, d = [], 2
    while d * d <= n:
        while n % d == 0:
            out.append(d)
            n //= d
        d += 1
    return out + ([n] if n > 1 else [])


def tile_neighbours(knob: Knob, limit: int = 32) -> list[tuple[int, ...]]:
    """Valid tilings one step from the current one: a prime factor moved from one position to
    another (what a grammar can offer a small model as the only choices)."""
    value = tuple(knob.value)
    out: list[tuple[int, ...]] = []
    for i in range(len(value)):
        for p in sorted(set(_prime_factors(value[i]))):
            for j in range(len(value)):
                if j == i:
                    continue
                moved = list(value)
                moved[i] //= p
                moved[j] *= p
                moved = tuple(moved)
                if moved not in out and validate(knob, moved) is None:
                    out.append(moved)
    return out[:limit]
