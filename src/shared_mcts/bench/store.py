"""The bench folder: `bench.json` (the settings every cell shares) and `results.jsonl`
(one record per finished cell, appended and fsynced, so a killed run loses at most the
cell in flight)."""

from __future__ import annotations

import json
from pathlib import Path

from .. import journal
from ..errors import UserError
from .matrix import Cell

RESULTS = "results.jsonl"
SETTINGS = "bench.json"
# Method names whose meaning changed: records written before provenance existed ran the method
# now called by the new name (`metaschedule` was MetaSchedule's stock configuration then).
RENAMED_BEFORE_PROVENANCE = {"metaschedule": "metaschedule-stock"}


def record_method(record: dict) -> str:
    """The method a record was made with, in today's names."""
    method = record["cell"]["method"]
    return RENAMED_BEFORE_PROVENANCE.get(method, method) if "provenance" not in record else method


def record_key(record: dict) -> str:
    """The record's cell key in today's method names: what a resumed bench compares."""
    cell = record["cell"]
    return f"{cell['workload']}|{record_method(record)}|{cell['trials']}|{cell['seed']}"


def append_record(path: Path, record: dict) -> None:
    journal.append(path, record)


def read_records(path: Path) -> list[dict]:
    """Every complete record; a torn last line (killed mid-write) or a foreign line is skipped."""
    return journal.read(path)


def _write_settings(path: Path, settings: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True))
    tmp.replace(path)


def _spec_difference(old: list, new: list) -> str:
    """One line saying how two model lists (spec dicts) differ."""
    old_names, new_names = [m["name"] for m in old], [m["name"] for m in new]
    if old_names != new_names:
        return f"models {', '.join(old_names)} then, {', '.join(new_names)} now"
    for before, now in zip(old, new):
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                return f"{before['name']}: {key} {before.get(key)!r} then, {now.get(key)!r} now"
    return "the same models"


def check_models(out: Path, old: dict, settings: dict) -> dict | None:
    """Refuse to resume a bench whose methods would now run with other models (names, budgets,
    prices, fallbacks, ...): their cells would be mixed with the old ones under one name.
    Methods new to the folder may use any models. Returns the settings to store when this run
    adds methods that use models, else None.

    bench.json files written before full specs were stored hold the --models names only, for
    every method: those are compared by name."""
    uses = settings.get("method_models") or {}
    if not uses:
        return None
    if "method_models" not in old:
        old_names = old.get("models")
        if old_names:  # names only, one list for the whole bench
            given = settings.get("models") or [spec for specs in uses.values() for spec in specs]
            new_names = list(dict.fromkeys(m["name"] for m in given))
            if old_names != new_names:
                raise UserError(f"{out} holds a bench made with models {', '.join(old_names)}, not "
                                f"{', '.join(new_names)}; use another --out")
            return None
        # No model names at all: written before benches had model-using methods (or in-process
        # without models, when `mcts` used expert,mutate): nothing to compare with.
        return dict(old, method_models=uses)
    for method, specs in uses.items():
        before = old["method_models"].get(method)
        if before is not None and before != specs:
            raise UserError(f"{out} holds a bench whose method {method} used other models "
                            f"({_spec_difference(before, specs)}); use another --out")
    added = {m: specs for m, specs in uses.items() if m not in old["method_models"]}
    return dict(old, method_models={**old["method_models"], **added}) if added else None


def open_bench_dir(out: Path, settings: dict) -> dict[str, dict]:
    """Create or reopen a bench folder; returns the finished records by cell key.
    Refuses to mix cells measured under different settings (target, measurement config) or
    methods run with other models."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder", argument="out")
    out.mkdir(parents=True, exist_ok=True)
    settings_path = out / SETTINGS
    if settings_path.exists():
        try:
            old = json.loads(settings_path.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{settings_path} is corrupt; move it away or use another bench folder") from None
        for key in ("target", "measure"):
            if old.get(key) != settings.get(key):
                raise UserError(
                    f"{out} holds a bench with another {key} ({json.dumps(old.get(key))}); use another --out"
                )
        updated = check_models(out, old, settings)
        if updated is not None:
            _write_settings(settings_path, updated)
    else:
        _write_settings(settings_path, settings)
    records = [r for r in read_records(out / RESULTS) if "cell" in r]
    _move_renamed_cell_dirs(out, records)
    return {record_key(r): r for r in records}


def _move_renamed_cell_dirs(out: Path, records: list[dict]) -> None:
    """A renamed method's old cell folder goes to its new name: a cell of the method that now has
    the old name would otherwise start afresh in that folder, deleting the old cell's files."""

    for record in records:
        cell = record["cell"]
        if record_method(record) == cell["method"]:
            continue
        old = out / "cells" / Cell(cell["workload"], cell["method"], cell["trials"], cell["seed"]).dirname
        new = out / "cells" / Cell(cell["workload"], record_method(record), cell["trials"], cell["seed"]).dirname
        if old.is_dir() and not new.exists():
            old.rename(new)


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
