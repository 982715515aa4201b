"""When the search stops: an exact number of measured candidates, or a wall-clock limit.
(A model's own call budget is models/budget.py.)"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Budget:
    trials: int
    wall_clock_s: float | None = None
    used_trials: int = 0
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self):
        if self.trials < 1:
            raise ValueError("the trial budget must be at least 1")

    @property
    def remaining(self) -> int:
        return max(self.trials - self.used_trials, 0)

    def spend(self, trials: int) -> None:
        if trials > self.remaining:
            raise RuntimeError(f"spending {trials} trials with {self.remaining} left")
        self.used_trials += trials

    def done(self) -> bool:
        if self.remaining == 0:
            return True
        return self.wall_clock_s is not None and time.monotonic() - self.started >= self.wall_clock_s

    def stop_reason(self) -> str:
        return "trial budget reached" if self.remaining == 0 else "wall-clock limit reached"
