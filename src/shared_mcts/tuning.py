"""`tune()`: one MCTS run on one workload, from a name to a run folder TVM can use.

`tune()` checks its arguments (every mistake is a UserError before anything is written or
measured), builds the run (schedule space, cost model, proposers, selector, observers) and
executes it; the run folder (run_folder.py) writes the files:
  database/           MetaSchedule JSONDatabase: `ms.tir_integration.compile_tir` applies the best
  best.py             the best schedule as TVMScript
  best_trace.py       its MetaSchedule trace as Python
  tree.json           the search tree
  ledger.jsonl        every event of the run, in order
  summary.json        the result (also returned by `tune`)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .costmodel import XGBRanker
from .errors import DeviceUnavailable, UserError
from .hardware import host_info, resolve_target
from .ledger import read_ledger
from .llm.backends import check_spec
from .measure import CheckResult, MeasureConfig, Measurer, check_correctness
from .measure.measurer import Measurement
from .models import ModelSpec
from .observers import LLMAccounting, Measurements, ProgressObserver
from .paths import check_writable_folder
from .progress import Progress, format_latency
from .proposers import DEFAULT_MODELS, LLMOptions, make_proposers, model_profiles, model_specs
from .run_folder import LEDGER, RunFolder
from .search.budget import Budget
from .search.credit import ModelStats
from .search.engine import SearchConfig, SearchEngine
from .search.events import OrphanCallsEvent, WrongResultEvent
from .search.proposal import Proposer
from .search.routers import Router
from .search.selection import SelectionContext, check_selector, make_selector
from .search.selector import Selector, TreePolicySelector
from .space.space import SPACES, ScheduleSpace
from .workloads import Workload, get_workload

DEFAULT_ROUTER = "bandit"
MAX_CORRECTNESS_CHECKS = 5


@dataclass
class Timing:
    search_wall_s: float = 0.0
    build_s: float = 0.0
    run_s: float = 0.0
    overhead_s: float = 0.0  # everything but building and running candidates
    overhead_share: float = 0.0
    replayed_measurements: int = 0  # served from a ledger (resume, replay) instead of measured


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
    per_model: dict[str, ModelStats] = field(default_factory=dict)
    timing: Timing = field(default_factory=Timing)
    ranking: str = ""
    history: list = field(default_factory=list)
    check: CheckResult | None = None  # the best schedule's correctness check
    best_mod: Any = field(default=None, repr=False)
    best_trace: Any = field(default=None, repr=False)

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("best_mod", "best_trace")}
        d["check"] = self.check.as_dict() if self.check else None
        d["per_model"] = {name: stats.as_dict() for name, stats in self.per_model.items()}
        d["timing"] = asdict(self.timing)
        return d


class _Evaluator:
    """Measures candidates for the engine. Candidates in `recorded` (structural hash ->
    Measurement, from an earlier run's ledger) are not measured again: their recorded result
    is used."""

    def __init__(self, measurer: Measurer, recorded: dict | None = None):
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
        measured_iter = iter(measured)
        results = []
        for candidate in candidates:
            if candidate.key in self.recorded:
                self.reused += 1
                results.append(copy.copy(self.recorded[candidate.key]))
            else:
                fresh = next(measured_iter, None)
                if fresh is None:
                    break
                results.append(fresh)
        for result in results:
            if not result.ok and not result.error.startswith(f"{result.error_kind}:"):
                result.error = f"{result.error_kind}: {result.error}"
        return results


def recorded_measurements(run_dir: Path) -> tuple[Measurement | None, dict]:
    """(untuned Measurement or None, {structural hash: Measurement}) from a run's ledger."""
    path = Path(run_dir) / LEDGER
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


def _checked_best(tree, workload, target, on_wrong):
    """The fastest measured candidate that computes the right result, checking in latency
    order (at most MAX_CORRECTNESS_CHECKS): a wrong result can never become the best.
    Returns (node, whether one is correct, its check)."""
    measured = sorted(tree.measured(), key=lambda n: (n.latency_s, n.id))
    for node in measured[:MAX_CORRECTNESS_CHECKS]:
        check = check_correctness(workload, node.candidate.mod, target)
        if check.ok:
            return node, True, check
        on_wrong(node, check.message)
    return None, (False if measured else None), None


def resolve_models(models: str | Sequence) -> tuple[list[ModelSpec], dict[str, Proposer]]:
    """`models` as given to tune: a comma list or models.toml path, or a list of spec texts,
    ModelSpecs and Proposer instances. Returns the specs and the instances by name."""
    if isinstance(models, str):
        return model_specs(models), {}
    specs, instances = [], {}
    for model in models:
        if isinstance(model, Proposer):
            instances[model.name] = model
        elif isinstance(model, (str, ModelSpec)):
            specs += model_specs([model])
        else:
            raise UserError(f"{model!r} is neither a model name, a ModelSpec nor a Proposer", argument="models")
    return specs, instances


def _validate(trials, seed, remeasure_repeat, wall_clock_s, out, space, replay) -> None:
    if trials < 1:
        raise UserError("must be at least 1", argument="trials")
    if space not in SPACES:
        raise UserError(f"{space!r} is unknown; use one of {', '.join(SPACES)}", argument="space")
    if seed < 0:
        raise UserError("must be 0 or more", argument="seed")
    if remeasure_repeat < 0:
        raise UserError("must not be negative", argument="remeasure_repeat")
    if wall_clock_s is not None and wall_clock_s <= 0:
        raise UserError("must be positive", argument="wall_clock_s")
    if isinstance(out, str) and not out.strip():
        raise UserError("is empty: give a folder name", argument="out")
    if replay is not None and not Path(replay).exists():
        raise UserError(f"{replay}: no such run or cache folder", argument="replay")


def tune(workload, trials: int = 32, seed: int = 0, models=DEFAULT_MODELS, out=None, target=None,
         measure=None, measurer=None, wall_clock_s: float | None = None, progress: Progress | None = None,
         search_config=None, remeasure_repeat: int = 10, on_trial=None, llm_cache=None, replay=None,
         router: str | Router | Selector = DEFAULT_ROUTER, new_out_under=None, on_folder=None,
         space: str = "widened") -> TuneResult:
    """Tune `workload` (a Workload, or a name / file spec) with MCTS over the given models.

    models: a comma list or models.toml path, or a list of model names, ModelSpecs and `Proposer`
        instances (search/proposal.py: anything with a `name` and `propose(request)`).
    router: which model expands each node: a name (search/selection.py: bandit, colt, phase,
        round-robin, single:MODEL, abmcts), or a `Router` instance (search/routers.py; run under
        the tree policy) or a `Selector` instance (search/selector.py).
    out: the run folder: new, empty, or holding an unfinished run of the same arguments (which
        is resumed); anything else is refused. None: no folder, unless `new_out_under` is given:
        then a fresh folder WORKLOAD-TIMESTAMP is made there.
    on_folder: called with the run folder's path once it exists (before any measurement).
    remeasure_repeat: timings of the best schedule in a fresh process (0: not re-measured).
    space: the design spaces searched (space/space.py): widened (micro-kernel templates and
        MetaSchedule's default sketches), micro, or stock.
    llm_cache: a folder shared between runs where LLM answers are cached (besides the run folder).
    replay: a run folder (or LLM cache folder): LLM answers and measurements recorded there are
        served instead of calling a model or measuring again, so the same seed gives the same run;
        no model is ever called; a candidate not recorded there is measured.
    """
    started = time.perf_counter()
    workload_arg = workload if isinstance(workload, str) else None
    models_arg = models if isinstance(models, str) else None
    workload = workload if isinstance(workload, Workload) else get_workload(workload)
    specs, instances = resolve_models(models)
    names = [spec.name for spec in specs] + list(instances)
    if not names:
        raise UserError("is empty: give at least one model", argument="models")
    router_name = router if isinstance(router, str) else router.name
    if isinstance(router, str):
        try:
            check_selector(router, names)
        except ValueError as e:
            raise UserError(str(e)) from None
    _validate(trials, seed, remeasure_repeat, wall_clock_s, out, space, replay)
    if replay is None:
        for spec in specs:
            if spec.is_llm:
                check_spec(spec)
    remote = (measurer.config if measurer else measure or MeasureConfig()).rpc is not None
    target = resolve_target(target, remote=remote)
    identity = {"workload": workload.name, "trials": trials, "seed": seed, "models": names, "router": router_name,
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

    schedule_space = ScheduleSpace(workload, target, seed, space=space)
    ranker = XGBRanker(schedule_space)
    # Before any measurement, so a missing key or model file costs nothing.
    llm_options = LLMOptions(cache_dirs=tuple(p for p in (out, llm_cache) if p is not None),
                             replay_from=(replay,) if replay is not None else (), replay_only=replay is not None,
                             journal=folder.on_event if folder else None)
    proposers = {**make_proposers(specs, schedule_space, ranker, hardware, workload, llm_options), **instances}
    profiles = model_profiles(specs, proposers)
    source = Path(replay) if replay is not None else (out if folder and folder.resuming else None)
    recorded_untuned, recorded = recorded_measurements(source) if source is not None else (None, {})
    if folder and folder.resuming:
        progress.line(f"{workload.name}: resuming {out}: {len(recorded)} recorded measurements will not be repeated")
    elif folder:
        progress.line(f"{workload.name}: run folder {out}")
    (untuned,) = [recorded_untuned] if recorded_untuned else measurer.measure_mods([workload.mod()])
    progress.line(f"{workload.name}: untuned {format_latency(untuned.latency_s)}; {len(schedule_space.designs)} "
                  f"design spaces; models {', '.join(names)}; {trials} trials")
    config = search_config or SearchConfig()
    if isinstance(router, Selector):
        selector = router
    elif isinstance(router, Router):
        selector = TreePolicySelector(router, config.policy)
    else:
        selector = make_selector(router, SelectionContext(
            names, seed, untuned.latency_s if untuned.ok else None,
            workload.flops / (hardware["peak_gflops"] * 1e9), config.policy))

    if folder:
        folder.start({**identity, "models_arg": models_arg, "workload_arg": workload_arg,
                      "untuned_latency_s": untuned.latency_s, "rpc": measurer.config.rpc})
        for spec in specs:
            caller = getattr(proposers[spec.name], "caller", None)
            orphans = caller.charge_orphans(folder.previous) if caller and folder.resuming else 0
            if orphans:  # killed mid-call: possibly paid for, so counted against the budget
                folder.on_event(OrphanCallsEvent(spec.name, orphans))
    measurements = Measurements()
    llm = LLMAccounting({spec.name for spec in specs if spec.is_llm})
    observers = [measurements, llm, ProgressObserver(progress, workload.name, trials,
                                                     untuned.latency_s if untuned.ok else None, llm, on_trial)]
    if folder:
        observers.insert(0, folder)
    evaluator = _Evaluator(measurer, recorded)
    engine = SearchEngine(schedule_space, evaluator, proposers, Budget(trials, wall_clock_s), seed=seed, config=config,
                          ranker=ranker, selector=selector, hardware=hardware, observers=observers, profiles=profiles,
                          reference_latency_s=untuned.latency_s if untuned.ok else None)
    try:
        search = engine.run()
    except DeviceUnavailable as lost:
        where = ""
        if folder:
            folder.stop(str(lost))
            where = (f"; the {len(measurements.events)} measurements so far are in the ledger: resume the run "
                     f"({out}) when the device is back")
        raise DeviceUnavailable(f"{lost}{where}") from None
    search_s = time.perf_counter() - started
    build_s, run_s = measurer.clock.build_s - clock0[0], measurer.clock.run_s - clock0[1]

    progress.update(f"{workload.name}: checking the best schedules against numpy", force=True)
    wrong: set[int] = set()

    def on_wrong(bad, message):
        wrong.add(bad.id)
        event = WrongResultEvent(bad.id, bad.latency_s, message)
        for observer in observers:
            observer.on_event(event)

    node, correct, check = _checked_best(search.tree, workload, target, on_wrong)
    overhead = max(search_s - build_s - run_s, 0.0)
    result = TuneResult(
        workload=workload.name, best_latency_s=None, search_best_s=node.latency_s if node else None,
        untuned_latency_s=untuned.latency_s, speedup_over_untuned=None, trials=search.trials,
        stop_reason=search.stop_reason, best_proposer=node.proposer if node else None, correct=correct,
        out=str(out) if out else None, models=names, router=router_name, space=space,
        strongest=max(profiles.values(), key=lambda p: (p.strength, p.name)).name,
        per_model=dict(search.credit.stats),
        timing=Timing(search_s, build_s, run_s, overhead, overhead / search_s if search_s else 0.0, evaluator.reused),
        ranking=ranker.status(), history=measurements.latencies, check=check,
    )
    for spec in specs:
        used = result.per_model.get(spec.name)
        if spec.is_llm and used and used.calls and used.failed_calls >= used.calls:
            result.stop_reason += (f"; every call to {spec.name} failed ({used.calls} attempts): its "
                                   f"{used.expansions} expansions were made by its fallback {spec.fallback}")
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
    if folder:
        run_secs = measurements.run_secs()
        records = [(n, run_secs.get(n.id)) for n in search.tree.measured() if n.id not in wrong]
        folder.finish(result, search.tree, records, workload, target)
    progress.line(f"{workload.name}: best {format_latency(result.best_latency_s)} re-measured"
                  + (f" ({result.speedup_over_untuned:.1f}x over untuned, by {result.best_proposer})"
                     if result.speedup_over_untuned else "")
                  + f"; {result.trials} trials; {result.stop_reason}")
    return result
