"""The run's ledger: one JSON line per event (proposal, measurement, ...), appended and
fsynced as it happens (journal.py), so a crash loses nothing already written."""

from __future__ import annotations

import time
from pathlib import Path

from . import journal


class Ledger:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._journal = journal.Journal(self.path, default=str)

    def write(self, record: dict) -> None:
        self._journal.write({"time": round(time.time(), 3), **record})

    def close(self) -> None:
        self._journal.close()


def read_ledger(path: Path) -> list[dict]:
    return journal.read(path)
