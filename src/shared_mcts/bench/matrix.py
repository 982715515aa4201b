"""Parse the bench matrix from CLI text and list its cells."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import UserError


@dataclass(frozen=True)
class Cell:
    workload: str
    method: str
    trials: int  # 0 for methods that ignore the trial budget (untuned, vendor anchors)
    seed: int

    @property
    def key(self) -> str:
        return f"{self.workload}|{self.method}|{self.trials}|{self.seed}"

    @property
    def dirname(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.key.replace("|", "__"))
        return safe[:200]

    def as_dict(self) -> dict:
        return asdict(self)


def parse_int_list(text: str, what: str, minimum: int = 0) -> list[int]:
    """'0-4' → [0..4], '32,64' → [32, 64]; ranges and lists may mix ('0-2,7')."""
    values: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                low, high = part.split("-", 1) if not part.startswith("-") else (part, "")
                lo, hi = int(low), int(high)
                if hi < lo:
                    raise UserError(f"{what}: empty range {part!r}")
                values.extend(range(lo, hi + 1))
            else:
                values.append(int(part))
        except ValueError:
            raise UserError(f"{what}: {part!r} is not an integer or a range like 0-4") from None
    if not values:
        raise UserError(f"{what}: nothing given")
    bad = [v for v in values if v < minimum]
    if bad:
        raise UserError(f"{what} must be at least {minimum}, got {bad[0]}")
    return sorted(set(values))


def parse_name_list(text: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"{what}: nothing given")
    return list(dict.fromkeys(names))


def build_cells(workloads: list[str], methods: list, trials: list[int], seeds: list[int]) -> list[Cell]:
    """Seed-major order, so that paired comparisons become available as early as possible.
    `methods` are objects with `name` and `uses_trials`."""
    cells = []
    for seed in seeds:
        for workload in workloads:
            for method in methods:
                for budget in trials if method.uses_trials else [0]:
                    cells.append(Cell(workload, method.name, budget, seed))
    return cells
