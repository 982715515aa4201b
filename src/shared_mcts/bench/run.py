"""Run the bench matrix one cell at a time, resumably."""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import time
import traceback
from pathlib import Path

import numpy

from ..errors import DeviceUnavailable, UserError, last_line
from ..hardware import host_info
from ..measure import MeasureConfig, Measurer, check_correctness
from ..measure.remeasure import packs_weights
from ..methods import MethodContext, get_method
from ..progress import Progress, format_latency
from ..proposers import model_specs
from ..workloads import get_workload
from .load import MACHINE_FLAG_SHARE, LoadMeter
from .matrix import Cell, build_cells
from .provenance import collect_provenance
from .store import RESULTS, append_record, open_bench_dir


def bench_host(target: dict, measure: MeasureConfig):
    """HostInfo with the measured peak, unless candidates run on a remote device."""
    if measure.rpc is not None:
        return dataclasses.replace(host_info(target), peak_measured_how=(
            f"not measured: candidates run on the RPC device {measure.rpc}, the kernel would run here"))
    return host_info(target, measure_peak=True)


def model_spec_dicts(models: list) -> list[dict]:
    """Full specs (ModelSpec, or spec texts) as JSON-ready dicts. Specs hold the NAME of the
    variable with an API key, never the key."""
    specs = model_specs(models)
    return json.loads(json.dumps([dataclasses.asdict(s) for s in specs]))


def bench_settings(target: dict, measure: MeasureConfig, host) -> dict:
    import tvm  # TVM: loaded on use (seconds to import)

    return {
        "target": target,
        "measure": measure.as_dict(),
        "host": host.as_dict(),
        "peak_formula": host.peak_formula(),
        "versions": {"tvm": tvm.__version__, "numpy": numpy.__version__, "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# A re-measure whose FMA probe ran below MACHINE_FLAG_SHARE of the peak timed a slow machine, not
# the schedule (re-measuring such a schedule minutes later gave its search-time speed): it is
# repeated, up to this many tries in all, and the discarded tries are kept in the record.
REMEASURE_TRIES = 3


def _remeasure_on_a_normal_machine(measurer: Measurer, mod, repeat: int, prepacked: bool, peak_gflops: float | None):
    """(the re-measure kept, the slow tries discarded before it)."""
    discarded = []
    while True:
        again = measurer.remeasure(mod, repeat=repeat, prepacked=prepacked)
        share = machine_share_of(again.machine_gflops, peak_gflops)
        if share is None or share >= MACHINE_FLAG_SHARE or len(discarded) + 1 == REMEASURE_TRIES:
            return again, discarded  # the last try is kept, slow or not: the load flag then says so
        discarded.append(again)


def run_cell(cell: Cell, method, target: dict, measurer: Measurer, cell_dir: Path, progress: Progress, label: str,
             remeasure_repeat: int, peak_gflops: float | None = None) -> dict:
    workload = get_workload(cell.workload)
    if cell_dir.exists():  # left over from a run killed inside this cell: start it afresh
        shutil.rmtree(cell_dir)
    cell_dir.mkdir(parents=True)
    best: list[float] = []
    started = time.perf_counter()

    def on_trial(i: int, latency: float | None) -> None:
        if latency is not None and (not best or latency < best[0]):
            best[:] = [latency]
        total = cell.trials or 1
        progress.update(f"{label}: trial {i}/{total}, best {format_latency(best[0] if best else None)}, "
                        f"{time.perf_counter() - started:.0f} s")

    build0, run0 = measurer.clock.build_s, measurer.clock.run_s
    record: dict = {"cell": {**cell.as_dict(), "key": cell.key}}
    try:
        result = method.run(MethodContext(workload, target, cell.trials, cell.seed, measurer, cell_dir, on_trial))
    except (UserError, DeviceUnavailable):  # not this cell's result: stop the bench, resumable
        raise
    except Exception as e:  # a method that crashes is a result of this cell, not the end of the bench
        record.update(status="failed", error=f"{type(e).__name__}: {last_line(e, 480, empty='-')}",
                      traceback=traceback.format_exc()[-3000:], wall_s=time.perf_counter() - started)
        return record
    record.update(
        search_best_s=result.best_latency_s,
        history=result.history,
        info=result.info,
        wall_s=time.perf_counter() - started,
        build_s=measurer.clock.build_s - build0,
        run_s=measurer.clock.run_s - run0,
        flops=workload.flops,
    )
    if result.best_latency_s is None:
        record.update(status="failed", error=result.info.get("error", "no successful trial"))
        return record
    if not method.produces_schedule:
        record.update(status="ok", latency_s=result.best_latency_s)
        return record
    progress.update(f"{label}: checking and re-measuring the best schedule", force=True)
    check = result.check or check_correctness(workload, result.best_mod, target)  # tune checked its own best
    record["check"] = check.as_dict()
    if not check.ok:
        record.update(status="wrong", error=f"best schedule is wrong: {check.message}")
        return record
    (cell_dir / "best.py").write_text(result.best_mod.script())
    try:
        again, slow = _remeasure_on_a_normal_machine(measurer, result.best_mod, remeasure_repeat, True, peak_gflops)
        # A schedule that packs weights is timed on weights packed beforehand (a deployment packs
        # its constants once); the variant that packs inside every call is timed too.
        packed = packs_weights(result.best_mod) and measurer.remote is None
        inkernel, slow_inkernel = (_remeasure_on_a_normal_machine(measurer, result.best_mod, remeasure_repeat, False, peak_gflops)
                                   if packed else (None, []))
    except Exception as e:
        record.update(status="failed", error=f"re-measure failed: {e}")
        return record
    record.update(status="ok", latency_s=again.median_s, remeasure=again.as_dict(), packs_weights=packed)
    if slow or slow_inkernel:
        record["remeasure_slow_machine"] = [r.as_dict() for r in slow + slow_inkernel]
    if inkernel is not None:
        record.update(latency_inkernel_s=inkernel.median_s, remeasure_inkernel=inkernel.as_dict())
    return record


def machine_share_of(probes: list[float], peak_gflops: float | None) -> float | None:
    """The slowest FMA probe over the bench's peak; None without a probe (no re-measure, a remote
    device) or without a peak."""
    return min(probes) / peak_gflops if probes and peak_gflops else None


def machine_share(record: dict, peak_gflops: float | None) -> float | None:
    """machine_share_of the probes beside the re-measures this cell's latencies come from."""
    probes = [g for key in ("remeasure", "remeasure_inkernel") for g in record.get(key, {}).get("machine_gflops", [])]
    return machine_share_of(probes, peak_gflops)


def run_bench(workloads: list[str], method_names: list[str], trials: list[int], seeds: list[int], out: Path,
              target: dict, measure: MeasureConfig, progress: Progress | None = None, remeasure_repeat: int = 10,
              max_cells: int | None = None, models: list | None = None) -> list[dict]:
    """Run every cell not yet in `out/results.jsonl`. `max_cells` stops after that many new
    cells (used by tests to simulate an interrupted run)."""
    progress = progress or Progress()
    load = LoadMeter()  # before our own start-up raises the load average
    for name in workloads:
        get_workload(name)  # fail on a bad name before anything runs
    methods = [get_method(m, models) for m in method_names]
    host = bench_host(target, measure)
    settings = bench_settings(target, measure, host)
    settings["models"] = model_spec_dicts(models) if models else None
    # What each model-using method (mcts, mcts-single:*, shared:*) runs with: resuming must not change it.
    settings["method_models"] = {m.name: model_spec_dicts(m.models) for m in methods if getattr(m, "models", None)}
    done = open_bench_dir(out, settings)
    cells = build_cells(workloads, methods, trials, seeds)
    todo = [c for c in cells if c.key not in done]
    progress.line(f"bench: {len(cells)} cells, {len(cells) - len(todo)} already done, {len(todo)} to run -> {out}")
    if not todo:
        return []
    measurer = Measurer(target, measure)
    by_name = {m.name: m for m in methods}
    provenance = collect_provenance(target, host.model_name).as_dict()
    # bench.json keeps the first run's peak; a machine whose speed changes between resumed runs
    # needs each run's own, so '% of peak' divides every cell by the peak measured beside it.
    peak = {"gflops": host.peak_measured_gflops, "how": host.peak_measured_how}
    new_records = []
    for n, cell in enumerate(todo[: max_cells if max_cells is not None else len(todo)], start=1):
        label = f"[{n}/{len(todo)}] {cell.workload} {cell.method}" + (f" {cell.trials} trials" if cell.trials else "") + f" seed {cell.seed}"
        progress.update(label, force=True)
        load.start()
        record = run_cell(cell, by_name[cell.method], target, measurer, out / "cells" / cell.dirname, progress, label,
                          remeasure_repeat, peak["gflops"])
        record["load"] = load.stop(machine_share(record, peak["gflops"])).as_dict()
        record["provenance"] = provenance
        record["peak"] = peak
        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        append_record(out / RESULTS, record)
        new_records.append(record)
        outcome = format_latency(record.get("latency_s")) if record["status"] == "ok" else f"{record['status']}: {record.get('error')}"
        busy = f"; machine busy: {record['load']['why']}" if record["load"]["flagged"] else ""
        progress.line(f"{label}: {outcome} ({record['wall_s']:.0f} s{busy})")
    return new_records
