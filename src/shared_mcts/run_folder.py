"""A tuning run's folder: created fresh, or resumed after a crash, or refused (anything else
in it is never touched).

Resuming reruns the search with the same seed while serving every measurement recorded in
the ledger (by structural hash) and every LLM answer in the folder's cache, so nothing that
was measured or paid for is done again, budgets continue from what was spent, and the result
is the one an uninterrupted run would have reached given the same measurements. The ledger
stays append-only: the rerun's events that are already in it are not written twice.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import UserError
from .ledger import Ledger, read_ledger
from .paths import check_writable_folder, claim_new_folder, write_text_atomic
from .search.events import DivergedEvent, Event, RunEndEvent, RunResumedEvent, RunStartEvent, StoppedEvent

LEDGER = "ledger.jsonl"
SUMMARY = "summary.json"
IDENTITY = ("workload", "trials", "seed", "models", "router", "target", "space")
# Runs started before an identity field existed had its only value then.
IDENTITY_BEFORE = {"space": "stock"}
SEARCH_EVENTS = ("proposal", "measurement")


def _same(event: dict, recorded: dict) -> bool:
    keys = ("event", "proposer", "node", "key") if event["event"] == "measurement" else ("event", "proposer", "node")
    return all(event.get(k) == recorded.get(k) for k in keys)


class RunFolder:
    """Validated, then created (or reopened) at construction: construct it only after every other
    check, so a rejected command writes nothing. Only an empty folder or an unfinished run with
    the same identity is accepted: nothing else in `path` is ever overwritten or deleted."""

    def __init__(self, path: Path, identity: dict, *, created: bool = False):
        """created: `path` was just made by this process (nothing to check)."""
        self.path, self.identity = Path(path), identity
        self.previous: list[dict] = []
        if not created:
            self._check(self.path, identity)
        self.path.mkdir(parents=True, exist_ok=True)
        self._pending = [e for e in self.previous if e.get("event") in SEARCH_EVENTS]
        self.replayed = 0
        self.diverged = False
        self._ledger: Ledger | None = None

    @classmethod
    def fresh(cls, parent: Path, name: str, identity: dict) -> RunFolder:
        """A new folder PARENT/NAME-TIMESTAMP, never one that existed."""
        check_writable_folder(Path(parent))
        return cls(claim_new_folder(Path(parent), name), identity, created=True)

    def _check(self, path: Path, identity: dict) -> None:
        check_writable_folder(path)
        if not path.exists():
            return
        ledger = path / LEDGER
        if (path / SUMMARY).exists() or (ledger.exists() and any(e.get("event") == "end" for e in read_ledger(ledger))):
            raise UserError(f"{path} already holds a finished tuning run; use another run folder")
        if ledger.exists():
            self.previous = read_ledger(ledger)  # empty if the crash came before the first record
        if not self.previous:
            others = sorted(p.name for p in path.iterdir() if p.name != LEDGER)
            if others:
                raise UserError(f"{path} is not empty and holds no tuning run ({len(others)} entries, e.g. "
                                f"{others[0]!r}); give a new or empty folder", argument="out")
            return
        start = next((e for e in self.previous if e.get("event") == "start"), None)
        if start is None:
            raise UserError(f"{path} holds a ledger without a start record; use another run folder")
        differs = [k for k in IDENTITY if json.dumps(start.get(k, IDENTITY_BEFORE.get(k)), sort_keys=True)
                   != json.dumps(identity.get(k), sort_keys=True)]
        if differs:
            raise UserError(f"{path} holds an unfinished run of {start.get('workload')} with other "
                            f"{', '.join(differs)}; resume it with `shared-mcts tune --resume {path}` "
                            "or use another --out")

    @property
    def resuming(self) -> bool:
        return bool(self.previous)

    def start(self, identity: dict) -> None:
        self._ledger = Ledger(self.path / LEDGER)
        self._write(RunResumedEvent(len(self._pending)) if self.resuming else RunStartEvent(identity))

    def on_event(self, event: Event) -> None:
        """Append an event, unless the resumed rerun is only repeating one already recorded (the
        folder is the ledger's observer)."""
        record = event.as_record()
        if record["event"] in SEARCH_EVENTS and self._pending and not self.diverged:
            if _same(record, self._pending[0]):
                self._pending.pop(0)
                self.replayed += 1
                return
            # Should not happen (same seed, same measurements): say so and keep everything new.
            self.diverged = True
            self._write(DivergedEvent(self.replayed, self._pending[0]))
        self._ledger.write(record)

    def _write(self, event: Event) -> None:
        self._ledger.write(event.as_record())

    def finish(self, result, tree, database_records: list, workload, target: dict) -> None:
        """Write the run's files (database, best schedule, tree, summary) and end the ledger.
        `result` is a TuneResult; `database_records` the (node, run_secs) to put in the database."""
        _write_database(self.path / "database", workload, database_records, target)
        if result.best_mod is not None:
            write_text_atomic(self.path / "best.py", result.best_mod.script())
            write_text_atomic(self.path / "best_trace.py",
                              "\n".join(result.best_trace.as_python(remove_postproc=False)) + "\n")
        write_text_atomic(self.path / "tree.json",
                          json.dumps(tree.as_dict(describe=lambda c: {"space": c.space, "values": c.values}), default=str))
        summary = result.as_dict()
        write_text_atomic(self.path / SUMMARY, json.dumps(summary, indent=2, default=str))
        self._write(RunEndEvent(summary))
        self.close()

    def stop(self, reason: str) -> None:
        self._write(StoppedEvent(reason))
        self.close()

    def close(self) -> None:
        if self._ledger:
            self._ledger.close()


def run_identity(path: Path) -> dict:
    """The arguments of the run in `path`, for `tune --resume`."""
    ledger = Path(path) / LEDGER
    if not ledger.is_file():
        raise UserError(f"{path}: no tuning run there (no {LEDGER})", argument="resume")
    start = next((e for e in read_ledger(ledger) if e.get("event") == "start"), None)
    if start is None:
        raise UserError(f"{path}: the ledger has no start record", argument="resume")
    return {**IDENTITY_BEFORE, **start}


def measurements_kept(path: Path) -> int | None:
    """How many measurements the run in `path` has recorded; None when no run started there
    (no start record yet)."""
    ledger = Path(path) / LEDGER
    events = read_ledger(ledger) if ledger.is_file() else []
    if not any(e.get("event") == "start" for e in events):
        return None
    return sum(e.get("event") == "measurement" for e in events)


def _write_database(path: Path, workload, records: list, target: dict) -> None:
    """MetaSchedule's JSONDatabase from the run's measurements (node, run_secs), so
    `ms.tir_integration.compile_tir` applies the best schedule without this package. Derived
    from the ledger (what survives a crash) and written whole at the end: into a new folder that
    is then renamed into place, so nothing that was at `path` is deleted (a database left by an
    earlier attempt of this run is kept beside it as database.previous-N)."""

    from tvm.s_tir import meta_schedule as ms  # TVM, only when a run folder is written
    from tvm.target import Target  # TVM: loaded on use (seconds to import)

    staging = Path(tempfile.mkdtemp(prefix=".database-", dir=path.parent))
    database = ms.database.JSONDatabase(work_dir=str(staging))
    entry = database.commit_workload(workload.mod())
    args_info = ms.arg_info.ArgInfo.from_prim_func(workload.mod()["main"])
    for node, run_secs in records:
        secs = run_secs or [node.latency_s]
        database.commit_tuning_record(ms.database.TuningRecord(node.candidate.trace, entry, [float(s) for s in secs],
                                                               Target(target), args_info))
    if path.is_dir() and any(path.iterdir()):
        n = 1
        while path.with_name(f"{path.name}.previous-{n}").exists():
            n += 1
        path.rename(path.with_name(f"{path.name}.previous-{n}"))
    os.replace(staging, path)  # replaces an empty folder, never a full one
