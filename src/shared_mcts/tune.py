"""`tune()`: one MCTS run on one workload, from a name to a run folder TVM can use.

The run folder holds:
  database/           MetaSchedule JSONDatabase: `ms.tir_integration.compile_tir` applies the best
  best.py             the best schedule as TVMScript
  best_trace.py       its MetaSchedule trace as Python
  tree.json           the search tree
  ledger.jsonl        every proposal and measurement, in order
  summary.json        the result (also returned by `tune`)
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import DeviceUnavailable, UserError
from .paths import write_text_atomic
from .progress import Progress, format_latency
from .proposers import DEFAULT_MODELS

DEFAULT_ROUTER = "bandit"


@dataclass
class TuneResult:
    workload: str
    best_latency_s: float | None  # re-measured in a fresh process
    search_best_s: float | None  # as measured during the search
    untuned_latency_s: float | None
    speedup_over_untuned: float | None
    trials: int
    stop_reason: str
    best_proposer: str | None
    correct: bool | None
    out: str | None
    models: list[str]
    router: str = ""
    space: str = ""  # the design spaces searched: widened, micro or stock
    strongest: str = ""  # the model routers escalate to
    per_model: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    ranking: str = ""
    history: list = field(default_factory=list)
    best_mod: object = field(default=None, repr=False)
    best_trace: object = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("best_mod", "best_trace")}


class _Evaluator:
    """Measures candidates for the engine. Candidates in `recorded` (structural hash ->
    Measurement, from an earlier run's ledger) are not measured again: their recorded result
    is used."""

    def __init__(self, measurer, recorded=None):
        self.measurer = measurer
        self.recorded = recorded or {}
        self.reused = 0

    def measure(self, candidates):
        fresh = [c for c in candidates if c.key not in self.recorded]
        try:
            measured = self.measurer.measure_mods([c.mod for c in fresh])
        except DeviceUnavailable as lost:  # in candidate order: what was finished before the loss
            raise DeviceUnavailable(str(lost), self._merge(candidates, lost.results)) from None
        return self._merge(candidates, measured)

    def _merge(self, candidates, measured: list) -> list:
        """Recorded and fresh results in candidate order, up to the first fresh one missing."""
        measured = iter(measured)
        results = []
        for candidate in candidates:
            if candidate.key in self.recorded:
                self.reused += 1
                results.append(copy.copy(self.recorded[candidate.key]))
            else:
                fresh = next(measured, None)
                if fresh is None:
                    break
                results.append(fresh)
        for result in results:
            if not result.ok and not result.error.startswith(f"{result.error_kind}:"):
                result.error = f"{result.error_kind}: {result.error}"
        return results


MAX_CORRECTNESS_CHECKS = 5


def _checked_best(tree, workload, target, on_wrong):
    """The fastest measured candidate that computes the right result, checking in latency
    order (at most MAX_CORRECTNESS_CHECKS): a wrong result can never become the best."""
    from .measure import check_correctness

    measured = sorted(tree.measured(), key=lambda n: (n.latency_s, n.id))
    for node in measured[:MAX_CORRECTNESS_CHECKS]:
        check = check_correctness(workload, node.candidate.mod, target)
        if check.ok:
            return node, True
        on_wrong(node, check.message)
    return None, (False if measured else None)


def _write_database(path: Path, workload, tree, events, target, wrong: set) -> None:
    """MetaSchedule's JSONDatabase from the run's measurements (wrong results left out), so
    `ms.tir_integration.compile_tir` applies the best schedule without this package. Derived
    from the ledger (what survives a crash) and written whole at the end: into a new folder that
    is then renamed into place, so nothing that was at `path` is deleted (a database left by an
    earlier attempt of this run is kept beside it as database.previous-N)."""
    import os
    import tempfile

    from tvm.s_tir import meta_schedule as ms
    from tvm.target import Target

    staging = Path(tempfile.mkdtemp(prefix=".database-", dir=path.parent))
    database = ms.database.JSONDatabase(work_dir=str(staging))
    entry = database.commit_workload(workload.mod())
    args_info = ms.arg_info.ArgInfo.from_prim_func(workload.mod()["main"])
    run_secs = {e["node"]: e.get("run_secs") for e in events if e["event"] == "measurement"}
    for node in tree.measured():
        if node.id in wrong:
            continue
        secs = run_secs.get(node.id) or [node.latency_s]
        database.commit_tuning_record(ms.database.TuningRecord(node.candidate.trace, entry, [float(s) for s in secs],
                                                               Target(target), args_info))
    if path.is_dir() and any(path.iterdir()):
        n = 1
        while path.with_name(f"{path.name}.previous-{n}").exists():
            n += 1
        path.rename(path.with_name(f"{path.name}.previous-{n}"))
    os.replace(staging, path)  # replaces an empty folder, never a full one


def recorded_measurements(run_dir: Path):
    """(untuned Measurement or None, {structural hash: Measurement}) from a run's ledger."""
    from .ledger import read_ledger
    from .measure.measurer import Measurement

    path = Path(run_dir) / "ledger.jsonl"
    if not path.is_file():
        return None, {}
    untuned, recorded = None, {}
    for e in read_ledger(path):
        if e.get("event") == "start" and e.get("untuned_latency_s") is not None:
            untuned = Measurement(e["untuned_latency_s"], run_secs=[e["untuned_latency_s"]])
        elif e.get("event") == "measurement" and e.get("key") is not None:
            error = e.get("error")
            kind = error.split(":", 1)[0] if error else None
            recorded[e["key"]] = Measurement(e["latency_s"], run_secs=e.get("run_secs") or
                                             ([e["latency_s"]] if e["latency_s"] is not None else []),
                                             error_kind=kind, error=error)
    return untuned, recorded


def _per_model(events: list[dict], tree, credit: dict | None = None) -> dict:
    stats: dict[str, Counter] = {}
    for e in events:
        s = stats.setdefault(e["proposer"], Counter())
        if e["event"] == "proposal":
            s["expansions"] += 1
            s["edits"] += e["edits"]
            s["valid_edits"] += e["valid"]
            s["invalid_edits"] += len(e["invalid"])
            s["seconds"] += e["seconds"]
            for key in ("calls", "prompt_tokens", "completion_tokens", "dollars"):
                s[key] += e["cost"][key]
            s["model_seconds"] += e["cost"]["seconds"]
            attempts = e.get("log", {}).get("call", {}).get("attempts", [])
            s["failed_calls"] += sum(1 for a in attempts if not a["ok"])
            s["cached_calls"] += sum(1 for a in attempts if a.get("cached"))
            if "fell back" in e.get("note", ""):
                s["fallbacks"] += 1
            if e.get("fallback_for"):
                s["expansions_as_fallback"] += 1
    for node in tree.nodes[1:]:
        s = stats.setdefault(node.proposer, Counter())
        s["measured"] += 1
        if node.status == "failed":
            s["failed"] += 1
        parent = tree.nodes[node.parent]
        if node.latency_s is not None and parent.latency_s is not None and node.latency_s < parent.latency_s:
            s["improved_parent"] += 1
    best_so_far = math.inf
    for node in sorted(tree.nodes[1:], key=lambda n: n.id):
        if node.latency_s is not None and node.latency_s < best_so_far:
            best_so_far = node.latency_s
            stats[node.proposer]["new_bests"] += 1
    out = {}
    for name, counter in stats.items():
        out[name] = dict(counter)
        if counter["edits"]:
            out[name]["valid_edit_rate"] = counter["valid_edits"] / counter["edits"]
        if credit and name in credit:
            out[name]["gain"] = credit[name]["gain"]  # sum of log(parent latency / latency) over its improvements
    return out


def resolve_models(models) -> list:
    """`models` as given to tune: a comma list or models.toml path, a list of spec texts, or
    a list of ModelSpec."""
    from .llm.config import ModelSpec, parse_model_specs

    if isinstance(models, str):
        return parse_model_specs(models)
    models = list(models)
    if models and all(isinstance(m, ModelSpec) for m in models):
        return models
    return parse_model_specs(",".join(models))


def tune(workload, trials: int = 32, seed: int = 0, models=DEFAULT_MODELS, out=None, target=None,
         measure=None, measurer=None, wall_clock_s: float | None = None, progress: Progress | None = None,
         search_config=None, remeasure_repeat: int = 10, on_trial=None, llm_cache=None, replay=None,
         router: str = DEFAULT_ROUTER, new_out_under=None, on_folder=None, space: str = "widened") -> TuneResult:
    """Tune `workload` (a Workload, or a name / file spec) with MCTS over the given models.

    out: the run folder: new, empty, or holding an unfinished run of the same arguments (which
        is resumed); anything else is refused. None: no folder, unless `new_out_under` is given:
        then a fresh folder WORKLOAD-TIMESTAMP is made there.
    on_folder: called with the run folder's path once it exists (before any measurement).
    remeasure_repeat: timings of the best schedule in a fresh process (0: not re-measured).

    router: which model expands each node (search/routers.py): bandit, colt, phase, round-robin, single:MODEL,
        abmcts.
    space: the design spaces searched (space/space.py): widened (micro-kernel templates and MetaSchedule's
        default sketches), micro, or stock.
    llm_cache: a folder shared between runs where LLM answers are cached (besides the run folder).
    replay: a run folder (or LLM cache folder): LLM answers and measurements recorded there are
        served instead of calling a model or measuring again, so the same seed gives the same run;
        no model is ever called; a candidate not recorded there is measured.
    """
    from .costmodel import XGBRanker
    from .hardware import host_info, resolve_target
    from .measure import MeasureConfig, Measurer
    from .paths import check_writable_folder
    from .run_folder import RunFolder
    from .proposers import LLMOptions, make_proposers, model_profiles
    from .search.routers import make_router
    from .search.budget import Budget
    from .search.engine import SearchConfig, SearchEngine
    from .space.space import SPACES, ScheduleSpace
    from .workloads import Workload, get_workload

    started = time.perf_counter()
    workload_arg = workload if isinstance(workload, str) else None
    models_arg = models if isinstance(models, str) else None
    workload = workload if isinstance(workload, Workload) else get_workload(workload)
    specs = resolve_models(models)
    models = [spec.name for spec in specs]
    try:
        router_impl = make_router(router, models)
    except ValueError as e:
        raise UserError(str(e)) from None
    if replay is not None and not Path(replay).exists():
        raise UserError(f"--replay {replay}: no such run or cache folder")
    if replay is None:
        from .llm.backends import check_spec

        for spec in specs:
            if spec.is_llm:
                check_spec(spec)
    if trials < 1:
        raise UserError("--trials must be at least 1")
    if space not in SPACES:
        raise UserError(f"unknown space {space!r}; use one of {', '.join(SPACES)}")
    if seed < 0:
        raise UserError("--seed must be 0 or more")
    if remeasure_repeat < 0:
        raise UserError("--remeasure-repeat must not be negative")
    if wall_clock_s is not None and wall_clock_s <= 0:
        raise UserError("--time-limit must be positive")
    if isinstance(out, str) and not out.strip():
        raise UserError("--out is empty: give a folder name")
    remote = (measurer.config if measurer else measure or MeasureConfig()).rpc is not None
    target = resolve_target(target, remote=remote)
    identity = {"workload": workload.name, "trials": trials, "seed": seed, "models": models, "router": router,
                "target": target, "space": space}
    if out is not None:  # before the Measurer starts its worker pools
        check_writable_folder(Path(out))
    measurer = measurer or Measurer(target, measure)  # before the folder: an unusable --rpc device touches nothing
    if out is not None:
        folder = RunFolder(Path(out), identity)
    elif new_out_under is not None:
        folder = RunFolder.fresh(Path(new_out_under), workload.name, identity)
    else:
        folder = None
    out = folder.path if folder else None
    if folder and on_folder:
        on_folder(out)
    progress = progress or Progress()
    hardware = host_info(target).as_dict()
    clock0 = (measurer.clock.build_s, measurer.clock.run_s)

    space_kind, space = space, ScheduleSpace(workload, target, seed, space=space)
    ranker = XGBRanker(space)
    # Before any measurement, so a missing key or model file costs nothing.
    llm_options = LLMOptions(cache_dirs=tuple(p for p in (out, llm_cache) if p is not None),
                             replay_from=(replay,) if replay is not None else (), replay_only=replay is not None,
                             journal=folder.write if folder else None)
    proposers = make_proposers(specs, space, ranker, hardware, workload, llm_options)
    source = Path(replay) if replay is not None else (out if folder and folder.resuming else None)
    recorded_untuned, recorded = recorded_measurements(source) if source is not None else (None, {})
    if folder and folder.resuming:
        progress.line(f"{workload.name}: resuming {out}: {len(recorded)} recorded measurements will not be repeated")
    elif folder:
        progress.line(f"{workload.name}: run folder {out}")
    (untuned,) = [recorded_untuned] if recorded_untuned else measurer.measure_mods([workload.mod()])
    progress.line(f"{workload.name}: untuned {format_latency(untuned.latency_s)}; {len(space.spaces)} design spaces; "
                  f"models {', '.join(models)}; {trials} trials")
    ledger = folder
    events: list[dict] = []
    best = {"latency": None, "proposer": None}
    llm_use = {"calls": 0, "seconds": 0.0, "fallbacks": 0}
    llm_names = {spec.name for spec in specs if spec.is_llm}

    def on_event(event: dict) -> None:
        events.append(event)
        if ledger:
            ledger.write(event)
        if event["event"] == "proposal" and event["proposer"] in llm_names:
            llm_use["calls"] += event["cost"]["calls"]
            llm_use["seconds"] += event["cost"]["seconds"]
            llm_use["fallbacks"] += "fell back" in event.get("note", "")
        if event["event"] == "measurement":
            latency = event["latency_s"]
            if latency is not None and (best["latency"] is None or latency < best["latency"]):
                best.update(latency=latency, proposer=event["proposer"])
            if on_trial:
                on_trial(event["trial"], latency)
            speed = f", {untuned.latency_s / best['latency']:.1f}x over untuned" if best["latency"] and untuned.ok else ""
            progress.update(f"{workload.name}: trial {event['trial']}/{trials}, best {format_latency(best['latency'])}"
                            f"{speed} (by {best['proposer']}), {time.perf_counter() - started:.0f} s"
                            + (f"; LLM {llm_use['calls']} calls, {llm_use['seconds']:.0f} s, {llm_use['fallbacks']} fallbacks"
                               if llm_use["calls"] else ""))

    if folder:
        folder.start({**identity, "models_arg": models_arg, "workload_arg": workload_arg,
                      "untuned_latency_s": untuned.latency_s, "rpc": measurer.config.rpc})
        for name, proposer in proposers.items():
            caller = getattr(proposer, "caller", None)
            orphans = caller.charge_orphans(folder.previous) if caller and folder.resuming else 0
            if orphans:  # killed mid-call: possibly paid for, so counted against the budget
                folder.write({"event": "orphan_calls_charged", "model": name, "count": orphans})
    evaluator = _Evaluator(measurer, recorded)
    engine_kwargs = dict(seed=seed, config=search_config or SearchConfig(), ranker=ranker, hardware=hardware,
                         on_event=on_event, profiles=model_profiles(specs, proposers),
                         reference_latency_s=untuned.latency_s if untuned.ok else None)
    if router == "abmcts":
        from .search.abmcts import ABMCTSEngine, speedup_score

        reference = untuned.latency_s if untuned.ok else 1.0
        roofline = workload.flops / (hardware["peak_gflops"] * 1e9)
        engine = ABMCTSEngine(space, evaluator, proposers, Budget(trials, wall_clock_s),
                              score=speedup_score(reference, roofline), **engine_kwargs)
    else:
        engine = SearchEngine(space, evaluator, proposers, Budget(trials, wall_clock_s), router=router_impl,
                              **engine_kwargs)
    try:
        search = engine.run()
    except DeviceUnavailable as lost:
        if ledger:
            ledger.write({"event": "stopped", "reason": str(lost)})
            ledger.close()
        where = (f"; the {sum(e['event'] == 'measurement' for e in events)} measurements so far are in the ledger: "
                 f"resume with `shared-mcts tune --resume {out}` when the device is back") if out else ""
        raise DeviceUnavailable(f"{lost}{where}") from None
    search_s = time.perf_counter() - started
    build_s, run_s = measurer.clock.build_s - clock0[0], measurer.clock.run_s - clock0[1]

    progress.update(f"{workload.name}: checking the best schedules against numpy", force=True)
    wrong: dict[int, str] = {}

    def on_wrong(bad, message):
        wrong[bad.id] = message
        on_event({"event": "wrong_result", "node": bad.id, "latency_s": bad.latency_s, "message": message})

    node, correct = _checked_best(search.tree, workload, target, on_wrong)
    result = TuneResult(
        workload=workload.name, best_latency_s=None, search_best_s=node.latency_s if node else None,
        untuned_latency_s=untuned.latency_s, speedup_over_untuned=None, trials=search.trials,
        stop_reason=search.stop_reason, best_proposer=node.proposer if node else None, correct=correct,
        out=str(out) if out else None, models=models, router=router, space=space_kind,
        strongest=max(specs, key=lambda s: (s.rank, s.name)).name,
        per_model=_per_model(events, search.tree, search.credit),
        timing={"search_wall_s": search_s, "build_s": build_s, "run_s": run_s,
                "overhead_s": max(search_s - build_s - run_s, 0.0),
                "overhead_share": max(search_s - build_s - run_s, 0.0) / search_s if search_s else 0.0,
                "replayed_measurements": evaluator.reused},
        ranking=ranker.status(),
        history=[e["latency_s"] for e in events if e["event"] == "measurement"],
    )
    for spec in specs:
        used = result.per_model.get(spec.name, {})
        if spec.is_llm and used.get("calls") and used.get("failed_calls", 0) >= used["calls"]:
            result.stop_reason += (f"; every call to {spec.name} failed ({used['calls']} attempts): its "
                                   f"{used.get('expansions', 0)} expansions were made by its fallback {spec.fallback}")
    if wrong:
        result.stop_reason += f"; {len(wrong)} fast candidate(s) computed wrong results and were not taken"
    if correct is False:
        result.stop_reason += (f"; none of the {MAX_CORRECTNESS_CHECKS} fastest candidates computed the right "
                               "result, so there is no best schedule")
    if node is not None:
        progress.update(f"{workload.name}: re-measuring the best schedule", force=True)
        result.best_mod, result.best_trace = node.candidate.mod, node.candidate.trace
        if remeasure_repeat == 0:  # the caller re-measures (bench does, for every method)
            result.best_latency_s = node.latency_s
        else:
            result.best_latency_s = measurer.remeasure(node.candidate.mod, repeat=remeasure_repeat).median_s
        if result.best_latency_s and untuned.ok:
            result.speedup_over_untuned = untuned.latency_s / result.best_latency_s
    if out is not None:
        _write_database(out / "database", workload, search.tree, events, target, set(wrong))
        if node is not None:
            write_text_atomic(out / "best.py", node.candidate.mod.script())
            write_text_atomic(out / "best_trace.py", "\n".join(node.candidate.trace.as_python(remove_postproc=False)) + "\n")
        write_text_atomic(out / "tree.json", json.dumps(search.tree.as_dict(describe=lambda c: {"space": c.space, "values": c.values}), default=str))
        write_text_atomic(out / "summary.json", json.dumps(result.as_dict(), indent=2, default=str))
    if ledger:
        ledger.write({"event": "end", "summary": result.as_dict()})
        ledger.close()
    progress.line(f"{workload.name}: best {format_latency(result.best_latency_s)} re-measured"
                  + (f" ({result.speedup_over_untuned:.1f}x over untuned, by {result.best_proposer})" if result.speedup_over_untuned else "")
                  + f"; {result.trials} trials; {result.stop_reason}")
    return result
