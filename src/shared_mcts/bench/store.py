"""The bench folder: `bench.json` (the settings every cell shares) and `results.jsonl`
(one record per finished cell, appended and fsynced, so a killed run loses at most the
cell in flight)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UserError

RESULTS = "results.jsonl"
SETTINGS = "bench.json"


def append_record(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_records(path: Path) -> list[dict]:
    """Every complete record; a torn last line (killed mid-write) is ignored."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def open_bench_dir(out: Path, settings: dict) -> dict[str, dict]:
    """Create or reopen a bench folder; returns the finished records by cell key.
    Refuses to mix cells measured under different settings (target, measurement config)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    settings_path = out / SETTINGS
    if settings_path.exists():
        try:
            old = json.loads(settings_path.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{settings_path} is corrupt; move it away or use another --out") from None
        for key in ("target", "measure"):
            if old.get(key) != settings.get(key):
                raise UserError(
                    f"{out} holds a bench with another {key} ({json.dumps(old.get(key))}); use another --out"
                )
    else:
        tmp = settings_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(settings, indent=2, sort_keys=True))
        tmp.replace(settings_path)
    return {r["cell"]["key"]: r for r in read_records(out / RESULTS) if "cell" in r}


def load_bench(out: Path) -> tuple[dict, list[dict]]:
    if not (out / SETTINGS).exists():
        raise UserError(f"{out} is not a bench folder (no {SETTINGS})")
    try:
        settings = json.loads((out / SETTINGS).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{out / SETTINGS} is corrupt (not valid JSON); restore it, or rerun the bench "
                        "into another --out") from None
    if not isinstance(settings, dict):
        raise UserError(f"{out / SETTINGS} is corrupt (not a JSON object)")
    return settings, read_records(out / RESULTS)
