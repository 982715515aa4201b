"""The run's ledger: one JSON line per event (proposal, measurement, ...), appended and
flushed as it happens, so a crash loses nothing already written."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class Ledger:
    def __init__(self, path: Path):
        self.path = path
        drop_torn_tail(Path(path))
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        record = {"time": round(time.time(), 3), **record}
        self._file.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def drop_torn_tail(path: Path) -> None:
    """A kill in the middle of a write leaves a partial last line; appending after it would
    glue the next record to it and lose both. Cut it off (it was never a complete record)."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def read_ledger(path: Path) -> list[dict]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line after a crash
            continue
    return out
