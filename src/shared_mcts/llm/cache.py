"""Replay cache: model answers keyed by (model, prompt, parameters), one JSON line each.

Written to the run folder (and to a shared cache folder if one is given) as each answer
arrives, so a rerun with `--replay` serves the same answers without calling any model, and a
resumed run does not pay twice for a call it already made."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .. import journal

CACHE_FILE = "llm_cache.jsonl"


def cache_key(identity: dict, messages: list[dict], schema: dict, params: dict) -> str:
    payload = json.dumps({"model": identity, "messages": messages, "schema": schema, "params": params},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def failure_key(key: str, attempt: int) -> str:
    return f"{key}#failed-attempt-{attempt}"


def _as_file(path: Path) -> Path:
    return path / CACHE_FILE if path.suffix != ".jsonl" else path


class ReplayCache:
    def __init__(self, write_to: list[Path] = (), read_from: list[Path] = ()):
        self.write_to = [_as_file(Path(p)) for p in write_to]
        for path in self.write_to:
            journal.drop_torn_tail(path)
        self.entries: dict[str, dict] = {}
        for path in [*map(Path, read_from), *map(Path, write_to)]:
            self._load(_as_file(path))

    def _load(self, path: Path) -> None:
        for entry in journal.read(path):
            if isinstance(entry.get("key"), str):
                self.entries.setdefault(entry["key"], entry)

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, entry: dict, shared: bool = True) -> None:
        """shared=False: only the first place (the run folder): e.g. failures, which another run
        should not inherit."""
        entry = {"key": key, **entry}
        self.entries[key] = entry
        for path in self.write_to if shared else self.write_to[:1]:
            journal.append(path, entry)
