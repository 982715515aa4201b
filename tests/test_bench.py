"""The bench harness end to end on a tiny workload, including a kill -9 and a resume."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import shared_mcts
from shared_mcts.bench.matrix import parse_int_list
from shared_mcts.bench.report import write_report
from shared_mcts.bench.run import run_bench
from shared_mcts.bench.store import RESULTS, append_record, read_records
from shared_mcts.errors import UserError
from shared_mcts.measure import MeasureConfig
from shared_mcts.progress import Progress

from .conftest import DATA

TINY = f"{DATA / 'small_matmul.py'}:matmul"
FAST = MeasureConfig(repeat=2, min_repeat_ms=5)


def test_int_lists():
    assert parse_int_list("0-4", "seeds") == [0, 1, 2, 3, 4]
    assert parse_int_list("32,64, 32", "trials") == [32, 64]
    assert parse_int_list("0-1,5", "seeds") == [0, 1, 5]
    for bad in ("a", "", "3-1"):
        with pytest.raises(UserError):
            parse_int_list(bad, "seeds")
    with pytest.raises(UserError, match="at least 1"):
        parse_int_list("0", "--trials", minimum=1)


def test_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / RESULTS
    append_record(path, {"cell": {"key": "a"}})
    with open(path, "a") as f:
        f.write('{"cell": {"key": "b"')  # killed mid-write
    assert [r["cell"]["key"] for r in read_records(path)] == ["a"]


def _keys(out):
    return [r["cell"]["key"] for r in read_records(out / RESULTS)] if out.exists() else []


def test_bench_kill_9_then_resume(tmp_path, target):
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "shared_mcts", "bench", "--workloads", TINY, "--methods", "untuned,random",
           "--trials", "3", "--seeds", "0,1", "--out", str(out), "--repeat", "2", "--min-repeat-ms", "5",
           "--remeasure-repeat", "3", "--no-anchors", "--target", json.dumps(target)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not _keys(out):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_records(out / RESULTS)
    assert 1 <= len(before) < 4, "the kill should land mid-bench"

    # Resume in-process and finish.
    new = run_bench([TINY], ["untuned", "random"], [3], [0, 1], out, target, FAST, Progress(stream=open(os.devnull, "w")),
                    remeasure_repeat=3)
    after = read_records(out / RESULTS)
    keys = [r["cell"]["key"] for r in after]
    assert len(keys) == len(set(keys)) == 4, keys
    assert after[: len(before)] == before, "finished cells must be kept, not redone"
    assert len(new) == 4 - len(before)
    for r in after:
        assert r["status"] == "ok", r
        assert r["check"]["ok"]
        if r["cell"]["method"] == "random":
            assert len(r["history"]) == 3

    # Nothing left to do: a third run measures nothing.
    assert run_bench([TINY], ["untuned", "random"], [3], [0, 1], out, target, FAST,
                     Progress(stream=open(os.devnull, "w"))) == []

    report = write_report(out).read_text()
    assert "| random | 3 | 2/2 |" in report
    assert "| untuned | - | 2/2 |" in report
    assert (out / "latency_vs_trials.png").stat().st_size > 1000


def test_bench_refuses_a_folder_measured_with_another_target(tmp_path, target):
    out = tmp_path / "bench"
    run_bench([TINY], ["untuned"], [1], [0], out, target, FAST, Progress(stream=open(os.devnull, "w")), remeasure_repeat=2)
    other = dict(target, **{"num-cores": 1})
    with pytest.raises(UserError, match="another target"):
        run_bench([TINY], ["untuned"], [1], [0], out, other, FAST, Progress(stream=open(os.devnull, "w")))
    assert len(read_records(out / RESULTS)) == 1


# ---- provenance, load, model specs (issue 14) ----

def test_records_carry_provenance_and_load(tmp_path, target):
    out = tmp_path / "bench"
    run_bench([TINY], ["untuned"], [1], [0], out, target, FAST, Progress(stream=open(os.devnull, "w")), remeasure_repeat=2)
    (record,) = read_records(out / RESULTS)
    prov = record["provenance"]
    if prov["commit"] is None:  # an installed copy, not a checkout (see test_provenance_of_a_checkout...)
        assert prov["dirty"] is None
    else:
        head = subprocess.run(["git", "-C", str(Path(shared_mcts.__file__).parent), "rev-parse", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        assert prov["commit"] == head and len(head) == 40 and isinstance(prov["dirty"], bool)
    assert {"shared_mcts", "tvm", "numpy", "python"} <= set(prov["versions"])
    assert prov["target"] == target and prov["llvm_cpu"] == target["mcpu"] and prov["cpu"]
    load = record["load"]
    assert set(load) == {"loadavg_before", "loadavg_after", "other_cpu_s", "wall_s", "cores", "other_share", "flagged", "why",
                         "machine_share"}
    assert load["cores"] == len(os.sched_getaffinity(0)) and load["wall_s"] > 0 and load["other_cpu_s"] >= 0
    assert load["other_share"] == pytest.approx(load["other_cpu_s"] / (load["wall_s"] * load["cores"]))
    host = json.loads((out / "bench.json").read_text())["host"]
    assert host["peak_measured_gflops"] > 0 and "FMA kernel" in host["peak_measured_how"]
    # each run's own peak goes into its cells (bench.json keeps the first run's)
    assert record["peak"] == {"gflops": host["peak_measured_gflops"], "how": host["peak_measured_how"]}
    # the machine's speed beside the re-measure, judged against that peak
    probes = record["remeasure"]["machine_gflops"]
    assert len(probes) == 2 and min(probes) > 0
    assert load["machine_share"] == pytest.approx(min(probes) / host["peak_measured_gflops"])


def _burn(n: int = 3_000_000) -> None:
    x = 0
    for i in range(n):
        x += i * i


def _orphan_burner(marker: Path) -> None:
    """Fork a grandchild that burns CPU and writes how much to `marker`; exiting at once makes
    that grandchild nobody's descendant of ours."""
    if os.fork() == 0:
        start = time.process_time()
        _burn()
        marker.with_suffix(".tmp").write_text(str(time.process_time() - start))
        marker.with_suffix(".tmp").replace(marker)
    os._exit(0)


def test_other_cpu_time_counts_processes_outside_our_tree(tmp_path):
    import multiprocessing

    from shared_mcts.bench.load import LoadMeter

    meter = LoadMeter()
    meter.start()
    marker = tmp_path / "burned"
    proc = multiprocessing.get_context("fork").Process(target=_orphan_burner, args=(marker,))
    proc.start()
    proc.join()
    while not marker.exists():
        time.sleep(0.05)
    burned = float(marker.read_text())
    record = meter.stop()
    # Other processes only ever add to it; a tick (10 ms) of sampling either side is tolerated.
    assert record.other_cpu_s >= burned - 0.05, (record, burned)
    assert record.flagged and "other processes used" in record.why


def test_own_children_are_not_others():
    import multiprocessing
    import resource

    from shared_mcts.bench.load import own_tree_cpu_s

    before, children_before = own_tree_cpu_s(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = multiprocessing.get_context("fork").Process(target=_burn)
    proc.start()
    proc.join()
    after, children_after = own_tree_cpu_s(), resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (children_after.ru_utime + children_after.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    assert child_cpu > 0.05
    assert after - before >= child_cpu - 0.05  # the reaped child's time is in our tree


def test_busy_time_reads_only_our_cpus():
    from shared_mcts.bench.load import _TICK_S, busy_cpu_s

    stat = ("cpu  300 0 100 900 5 0 2 1 0 0\n"
            "cpu0 100 0 50 400 2 0 1 1 0 0\n"
            "cpu1 200 0 50 500 3 0 1 0 0 0\n"
            "intr 12345\n")
    assert busy_cpu_s({0}, stat) == pytest.approx((100 + 50 + 1 + 1) * _TICK_S)
    assert busy_cpu_s({0, 1}, stat) == pytest.approx((100 + 50 + 1 + 1 + 200 + 50 + 1) * _TICK_S)


def test_load_judgement():
    from shared_mcts.bench.load import judge

    assert judge(0.1, 0.0, 10.0, 2, True)[1:] == (False, "quiet: other processes used 0.0% of the 2 cores")
    share, flagged, why = judge(0.1, 2.0, 10.0, 2, True)
    assert share == pytest.approx(0.1) and flagged and "10.0%" in why
    assert judge(0.9, 0.0, 10.0, 2, True)[1] and "load average 0.90" in judge(0.9, 0.0, 10.0, 2, True)[2]
    # Right after our own cell the load average counts that cell: not a sign of others.
    share, flagged, why = judge(0.9, 0.0, 10.0, 2, False)
    assert not flagged and "not judged" in why
    # A machine that ran the peak kernel slowly beside the re-measure, with no busy process in sight.
    share, flagged, why = judge(0.1, 0.0, 10.0, 2, True, machine_share=0.45)
    assert flagged and "peak FMA kernel ran at 45% of the bench's peak" in why
    assert not judge(0.1, 0.0, 10.0, 2, True, machine_share=0.9)[1]


def test_a_re_measure_on_a_slow_machine_is_repeated_and_the_slow_tries_kept():
    from shared_mcts.bench.run import REMEASURE_TRIES, _remeasure_on_a_normal_machine
    from shared_mcts.measure.remeasure import summarize

    class Remeasurer:  # a fake measurer: each re-measure's FMA probe in GFLOP/s, in turn
        def __init__(self, probes):
            self.probes, self.calls = list(probes), 0

        def remeasure(self, mod, repeat, prepacked):
            self.calls += 1
            return summarize([float(self.calls)], self.probes.pop(0))

    kept, slow = _remeasure_on_a_normal_machine(Remeasurer([[200.0, 450.0], [440.0, 450.0]]), None, 3, True, 460.0)
    assert kept.samples_s == [2.0] and [r.samples_s for r in slow] == [[1.0]]
    assert _remeasure_on_a_normal_machine(Remeasurer([[450.0, 420.0]]), None, 3, True, 460.0)[1] == []
    fake = Remeasurer([[200.0, 200.0]] * REMEASURE_TRIES)
    kept, slow = _remeasure_on_a_normal_machine(fake, None, 3, True, 460.0)
    assert fake.calls == REMEASURE_TRIES and len(slow) == REMEASURE_TRIES - 1  # then the load flag says so
    assert _remeasure_on_a_normal_machine(Remeasurer([[]]), None, 3, True, 460.0)[1] == []  # no probe: nothing to judge


def test_machine_share_is_the_slowest_probe_over_the_peak():
    from shared_mcts.bench.run import machine_share

    record = {"remeasure": {"machine_gflops": [400.0, 300.0]}, "remeasure_inkernel": {"machine_gflops": [200.0, 390.0]}}
    assert machine_share(record, 400.0) == pytest.approx(0.5)
    assert machine_share({"remeasure": {"machine_gflops": []}}, 400.0) is None  # a remote device: no probe
    assert machine_share({"status": "ok"}, 400.0) is None  # an anchor: nothing re-measured
    assert machine_share(record, None) is None


def test_first_cell_is_judged_by_the_load_average_before_the_bench_began(monkeypatch):
    from shared_mcts.bench import load

    readings = iter([0.1, 0.8, 0.8, 0.9, 0.9])  # creation; the bench's start-up then raised it
    monkeypatch.setattr(load, "loadavg_1min", lambda: next(readings))
    meter = load.LoadMeter()
    meter.start()
    first = meter.stop()
    # (other processes' CPU time over a few milliseconds may flag it on its own: not judged here)
    assert first.loadavg_before == 0.1 and "load average" not in first.why, first
    meter.start()  # later cells read it afresh (judged only long after our previous cell)
    assert meter.stop().loadavg_before == 0.8


def test_provenance_of_a_checkout_and_of_a_copy(tmp_path):
    from shared_mcts.bench.provenance import source_tree_state

    package = tmp_path / "repo" / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    assert source_tree_state(package) == (None, None)  # not a git checkout
    git = ["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "c"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert source_tree_state(package) == (head, False)
    (tmp_path / "repo" / "results.jsonl").write_text("{}\n")  # outside the package: still clean
    assert source_tree_state(package) == (head, False)
    (package / "__init__.py").write_text("x = 2\n")
    assert source_tree_state(package) == (head, True)
    copy = tmp_path / "repo" / ".venv" / "pkg"  # an untracked installed copy inside the checkout
    copy.mkdir(parents=True)
    (copy / "__init__.py").write_text("x = 1\n")
    assert source_tree_state(copy) == (None, None)


def _models_toml(tmp_path, max_calls: int) -> str:
    path = tmp_path / f"models{max_calls}.toml"
    path.write_text(f'[models.cheap]\nbackend = "builtin"\nmodel = "mutate"\nmax_calls = {max_calls}\n'
                    '[models.strong]\nbackend = "builtin"\nmodel = "expert"\nprice_per_call = 0.01\n')
    return str(path)


def test_resume_with_other_model_budgets_is_refused(tmp_path, target, run_cli):
    from shared_mcts.proposers import model_specs as parse_model_specs

    out = tmp_path / "bench"
    quiet = Progress(stream=open(os.devnull, "w"))
    # max_cells=0: create the folder and its settings, run nothing.
    run_bench([TINY], ["shared:bandit"], [2], [0], out, target, FAST, quiet,
              models=parse_model_specs(_models_toml(tmp_path, 4)), max_cells=0)
    settings = json.loads((out / "bench.json").read_text())
    cheap = settings["method_models"]["shared:bandit"][0]
    assert (cheap["name"], cheap["max_calls"], cheap["fallback"]) == ("cheap", 4, "mutate")
    assert [m["name"] for m in settings["models"]] == ["cheap", "strong"]
    # Same models: resumable; a new method with other models: allowed, and remembered.
    run_bench([TINY], ["shared:bandit"], [2], [1], out, target, FAST, quiet,
              models=parse_model_specs(_models_toml(tmp_path, 4)), max_cells=0)
    run_bench([TINY], ["mcts-single:expert"], [2], [0], out, target, FAST, quiet,
              models=parse_model_specs("expert,mutate"), max_cells=0)
    assert set(json.loads((out / "bench.json").read_text())["method_models"]) == {"shared:bandit", "mcts-single:expert"}
    # Another budget for the same method: refused, one line, exit 2, nothing written.
    before = (out / "bench.json").read_text()
    code, _, err = run_cli("bench", "--workloads", TINY, "--methods", "shared:bandit", "--models", _models_toml(tmp_path, 16),
                           "--trials", "2", "--seeds", "0", "--out", out, "--no-anchors", "--target", json.dumps(target),
                           "--repeat", "2", "--min-repeat-ms", "5")
    assert code == 2 and err.count("\n") == 1
    assert "method shared:bandit used other models (cheap: max_calls 4 then, 16 now)" in err
    assert (out / "bench.json").read_text() == before and not (out / RESULTS).exists()


def test_old_bench_json_with_model_names_only(tmp_path):
    from shared_mcts.bench.store import open_bench_dir

    old = {"target": {"kind": "llvm"}, "measure": {}, "models": ["expert", "mutate"]}
    out = tmp_path / "old"
    out.mkdir()
    (out / "bench.json").write_text(json.dumps(old))
    spec = [{"name": "expert", "backend": "builtin"}, {"name": "mutate", "backend": "builtin"}]
    new = {"target": {"kind": "llvm"}, "measure": {}, "models": spec, "method_models": {"mcts": spec}}
    open_bench_dir(out, new)  # same names: resumable, and the old file is left as it was
    assert json.loads((out / "bench.json").read_text()) == old
    with pytest.raises(UserError, match="made with models expert, mutate, not expert"):
        open_bench_dir(out, dict(new, models=spec[:1], method_models={"mcts": spec[:1]}))
    open_bench_dir(out, dict(new, models=spec[:1], method_models={}))  # no model-using method: nothing to mix


def test_metaschedule_configurations():
    import inspect

    from tvm.s_tir import meta_schedule as ms

    from shared_mcts.methods import get_method
    from shared_mcts.methods.metaschedule import STOCK_WARMUP_SAMPLES

    assert inspect.signature(ms.cost_model.XGBModel).parameters["num_warmup_samples"].default == STOCK_WARMUP_SAMPLES
    configs = {name: get_method(name).config for name in ("metaschedule", "metaschedule-stock", "metaschedule-warm0", "random")}
    assert (configs["metaschedule"].num_trials_per_iter, configs["metaschedule"].warmup_samples,
            configs["metaschedule"].adaptive_training) == (8, 0, False)
    assert (configs["metaschedule-stock"].num_trials_per_iter, configs["metaschedule-stock"].warmup_samples) == (64, 100)
    assert (configs["metaschedule-warm0"].num_trials_per_iter, configs["metaschedule-warm0"].warmup_samples) == (64, 0)
    assert configs["random"].strategy == "replay-trace"


def test_small_budget_metaschedule_runs_several_generations(tmp_path, target):
    out = tmp_path / "bench"
    run_bench([TINY], ["metaschedule"], [12], [0], out, target, FAST, Progress(stream=open(os.devnull, "w")),
              remeasure_repeat=2)
    (record,) = read_records(out / RESULTS)
    assert record["status"] == "ok", record.get("error")
    assert record["info"]["num_trials_per_iter"] == 8 and record["info"]["warmup_samples"] == 0
    # Up to 8 per iteration: 12 trials take two generations or more, the later ones after feedback.
    # (A small space may run out of new candidates: a generation may send fewer.)
    logs = "".join(p.read_text() for p in (out / "cells").rglob("*scheduler.log"))
    sends = [int(n) for n in re.findall(r"Sending (\d+) sample\(s\) to builder", logs)]
    assert sends[0] == 8 and len(sends) >= 2 and max(sends) <= 8, sends
    assert sum(sends) == len(record["history"]) <= 12


def test_old_metaschedule_records_are_the_stock_configuration(tmp_path):
    from shared_mcts.bench.store import open_bench_dir, record_method

    out = tmp_path / "old"
    (out / "cells" / "w__metaschedule__32__0").mkdir(parents=True)
    (out / "cells" / "w__metaschedule__32__0" / "best.py").write_text("# stock\n")
    settings = {"target": {"kind": "llvm"}, "measure": {}}
    (out / "bench.json").write_text(json.dumps(settings))
    old = {"cell": {"key": "w|metaschedule|32|0", "workload": "w", "method": "metaschedule", "trials": 32, "seed": 0}}
    append_record(out / RESULTS, old)
    new = dict(old, cell=dict(old["cell"], seed=1, key="w|metaschedule|32|1"), provenance={"commit": None})
    append_record(out / RESULTS, new)
    assert (record_method(old), record_method(new)) == ("metaschedule-stock", "metaschedule")
    done = open_bench_dir(out, settings)
    # Resuming `metaschedule` reruns seed 0 in the new configuration; `metaschedule-stock` has it.
    assert set(done) == {"w|metaschedule-stock|32|0", "w|metaschedule|32|1"}
    assert (out / "cells" / "w__metaschedule-stock__32__0" / "best.py").read_text() == "# stock\n"
    assert not (out / "cells" / "w__metaschedule__32__0").exists()
