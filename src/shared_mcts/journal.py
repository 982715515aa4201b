"""JSON-lines journals: the run's ledger, the LLM answer cache and the bench's results file.

One record per line, appended and fsynced as it happens, so a crash (even `kill -9`) loses at
most the line being written. A kill in the middle of a write leaves a partial last line;
appending after it would glue the next record to it and lose both, so it is cut off before the
file is appended to again, and readers skip it (and any other line that is not a JSON object).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def drop_torn_tail(path: Path) -> None:
    """Cut a partial last line (it was never a complete record)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def _line(record: dict, default: Callable[[Any], Any] | None) -> str:
    return json.dumps(record, sort_keys=True, default=default) + "\n"


def append(path: Path, record: dict, default: Callable[[Any], Any] | None = None) -> None:
    """Append one record to `path` and fsync it (opening the file for this one record)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(_line(record, default))
        f.flush()
        os.fsync(f.fileno())


class Journal:
    """A journal kept open for many records (the ledger writes one per event)."""

    def __init__(self, path: Path, default: Callable[[Any], Any] | None = None):
        self.path = Path(path)
        self.default = default
        drop_torn_tail(self.path)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._file.write(_line(record, self.default))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_counting(path: Path) -> tuple[list[dict], int]:
    """The records (JSON objects) in file order, and how many non-empty lines were not one
    (torn by a kill, not UTF-8, not JSON, or JSON of something else)."""
    path = Path(path)
    if not path.is_file():
        return [], 0
    records, skipped = [], 0
    for raw in path.read_bytes().splitlines():
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep to parse
            skipped += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            skipped += 1
    return records, skipped


def read(path: Path) -> list[dict]:
    """The records of a journal, tolerating a torn last line and foreign lines."""
    return read_counting(path)[0]
