"""Report arithmetic on hand-made records (pure logic: no TVM run)."""

import json

import pytest

from shared_mcts.bench.report import write_report
from shared_mcts.bench.stats import bootstrap_geomean_interval, geomean, t_geomean_interval
from shared_mcts.bench.store import RESULTS, SETTINGS, append_record
from shared_mcts.cli import main

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def _record(workload, method, trials, seed, latency, history=None, search_best=None):
    return {"cell": {"workload": workload, "method": method, "trials": trials, "seed": seed,
                     "key": f"{workload}|{method}|{trials}|{seed}"},
            "status": "ok", "latency_s": latency, "flops": 1e9, "history": history or [latency],
            "search_best_s": search_best if search_best is not None else latency,
            "wall_s": 10.0, "build_s": 4.0, "run_s": 2.0}


def _provenance(commit=COMMIT_A, dirty=False):
    return {"commit": commit, "dirty": dirty, "versions": {"shared_mcts": "0.1.0", "tvm": "0.27.0.post1"},
            "cpu": "Test CPU @ 2.5GHz", "llvm_cpu": "cascadelake", "target": {"kind": "llvm", "mcpu": "cascadelake"}}


def _load(flagged=False, why=""):
    return {"loadavg_before": 0.9 if flagged else 0.1, "loadavg_after": 0.2, "other_cpu_s": 3.0 if flagged else 0.0,
            "wall_s": 10.0, "cores": 2, "other_share": 0.15 if flagged else 0.0, "flagged": flagged, "why": why}


def _settings(tmp_path, **host):
    settings = {"target": {"kind": "llvm"}, "measure": {}, "host": {"model_name": "cpu", "peak_gflops": 100.0, **host},
                "peak_formula": "test", "versions": {}}
    (tmp_path / SETTINGS).write_text(json.dumps(settings))


@pytest.fixture
def bench_dir(tmp_path):
    """Two seeds of records written before the bench kept provenance."""
    _settings(tmp_path)
    for seed, (ms, ours) in enumerate([(0.010, 0.005), (0.020, 0.005)]):
        append_record(tmp_path / RESULTS, _record("w", "untuned", 0, seed, 1.0))
        append_record(tmp_path / RESULTS, _record("w", "numpy", 0, seed, 0.004))
        append_record(tmp_path / RESULTS, _record("w", "metaschedule", 32, seed, ms, [0.05, ms]))
        append_record(tmp_path / RESULTS, _record("w", "random", 32, seed, ours, [0.04, ours], search_best=0.004))
    failed = _record("w", "random", 32, 2, None)
    failed.update(status="failed", error="every trial failed <script>")
    append_record(tmp_path / RESULTS, failed)
    return tmp_path


def _row(text, *starts):
    """The one table row that starts with these cells."""
    prefix = "| " + " | ".join(starts) + " |"
    rows = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, (prefix, rows)
    return rows[0]


def test_report_table_and_paired_speedups_on_old_records(bench_dir):
    text = write_report(bench_dir).read_text()
    # old `metaschedule` records (no provenance) are the stock configuration
    assert "| metaschedule |" not in text
    # median latency, min-max, search-time best, its ratio to the re-measured one, GFLOP/s at the median latency,
    # % of the formula's 100 GFLOP/s peak (median of the seeds' 100% and 50%), speed vs numpy, what it rests on
    assert ("| metaschedule-stock | 32 | 2/2 | 15 ms | 10 ms - 20 ms | 15 ms | 1.00 | 66.7 | 75.0% | 0.27x | "
            "2 / commit unknown / load unknown |") in text
    assert "| random | 32 | 2/3 | 5 ms | 5 ms - 5 ms | 4 ms | 0.80 |" in text
    assert "of the formula's peak 100 GFLOP/s" in text
    assert "biased low" in text
    # paired by seed: 10/5 = 2 and 20/5 = 4 → geomean 2.83; t interval primary, bootstrap secondary
    t, boot = t_geomean_interval([2, 4]), bootstrap_geomean_interval([2, 4])
    row = _row(text, "w", "32", "random", "best MetaSchedule: metaschedule-stock")
    assert (f"| 2 | 2.83x | {t.low:.2f}-{t.high:.2f} | {boot.low:.2f}-{boot.high:.2f} | "
            "2 / commit unknown / load unknown | < 10 seeds: not a headline |") in row
    assert t.high / t.low > 100  # two seeds: the t interval is honest about how little that is
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert "Commit unknown: 9 of 9 cells" in text and "Load unknown: 9 of 9 cells" in text
    assert (bench_dir / "latency_vs_trials.png").exists()
    assert (bench_dir / "speedups.png").exists()


def test_rows_say_how_many_seeds_commits_and_flagged_cells_they_rest_on(tmp_path):
    _settings(tmp_path)
    for seed in range(10):
        for method, latency in (("untuned", 1.0), ("random", 0.5 + 0.01 * seed)):
            record = _record("w", method, 32 if method == "random" else 0, seed, latency)
            record["provenance"] = _provenance(COMMIT_B if seed >= 8 else COMMIT_A, dirty=seed == 9)
            record["load"] = _load(flagged=(method, seed) == ("random", 3), why="other_share 15% > 5%")
            append_record(tmp_path / RESULTS, record)
    text = write_report(tmp_path).read_text()
    row = _row(text, "w", "32", "random", "untuned")
    assert "| 10 / 2 commits (dirty) / 1 flagged |  |" in row  # ten seeds: no "not a headline" note
    assert "| random | 32 | 10/10 |" in text and "10 / 2 commits (dirty) / 1 flagged |" in _row(text, "random", "32")
    # the provenance section lists commits, versions, CPUs, targets and the flagged cell with its why
    assert f"`{COMMIT_A}` (16 cells)" in text and f"`{COMMIT_B}` (dirty) (2 cells)" in text
    assert "`Test CPU @ 2.5GHz` (20 cells)" in text and '"mcpu": "cascadelake"' in text
    assert '"tvm": "0.27.0.post1"' in text
    assert "| w\\|random\\|32\\|3 | 15.0% | 0.9 | other_share 15% &gt; 5% |" in text
    assert "Flagged (measured while the machine was not quiet): 1 of 20 cells" in text


def test_mixed_provenance_is_said_per_row(tmp_path):
    _settings(tmp_path)
    for seed in range(3):
        append_record(tmp_path / RESULTS, _record("w", "untuned", 0, seed, 1.0))
        record = _record("w", "random", 32, seed, 0.5)
        if seed:
            record["provenance"], record["load"] = _provenance(), _load()
        append_record(tmp_path / RESULTS, record)
    text = write_report(tmp_path).read_text()
    assert "| 3 / 1 commit + commit unknown / 0 flagged + load unknown |" in _row(text, "w", "32", "random", "untuned")


def test_best_metaschedule_is_chosen_per_workload_and_each_configuration_is_shown(tmp_path):
    _settings(tmp_path)
    latencies = {  # workload → (old stock, new small-budget, ours)
        "a": (0.010, 0.020, 0.010),
        "b": (0.040, 0.020, 0.010),
    }
    for seed in range(3):
        for w, (stock, small, ours) in latencies.items():
            append_record(tmp_path / RESULTS, _record(w, "metaschedule", 32, seed, stock))  # old: no provenance
            new = _record(w, "metaschedule", 32, seed, small)
            new.update(provenance=_provenance(), load=_load())
            new["info"] = {"num_trials_per_iter": 8, "warmup_samples": 0}
            append_record(tmp_path / RESULTS, new)
            append_record(tmp_path / RESULTS, _record(w, "mcts", 32, seed, ours))
    text = write_report(tmp_path).read_text()
    assert "| a | 32 | metaschedule-stock | metaschedule-stock 10 ms, metaschedule 20 ms |" in text
    assert "| b | 32 | metaschedule | metaschedule-stock 40 ms, metaschedule 20 ms |" in text
    assert "- `metaschedule`: 8 candidates per iteration, XGBoost warm-up 0 samples (6 cells)" in text
    assert "`metaschedule-stock`: 6 cells recorded as `metaschedule` before the bench kept provenance" in text
    assert "chosen after the fact" in text
    # against the best per workload: 1x on a (vs stock), 2x on b (vs small-budget); geomean √2
    assert "| 3 | 1.00x |" in _row(text, "a", "32", "mcts", "best MetaSchedule: metaschedule-stock")
    assert "| 3 | 2.00x |" in _row(text, "b", "32", "mcts", "best MetaSchedule: metaschedule")
    assert "| 3 | 1.41x |" in _row(text, "geomean over a, b", "32", "mcts", "best MetaSchedule")
    # and against each configuration on its own, plus the configurations against each other
    assert "| 3 | 4.00x |" in _row(text, "b", "32", "mcts", "metaschedule-stock")
    assert "| 3 | 2.00x |" in _row(text, "b", "32", "metaschedule", "metaschedule-stock")


def test_single_models_are_compared_pairwise_once(tmp_path):
    _settings(tmp_path)
    for seed in range(2):
        for method, latency in (("mcts-single:a", 0.01), ("mcts-single:b", 0.02), ("mcts-single:c", 0.04)):
            append_record(tmp_path / RESULTS, _record("w", method, 32, seed, latency))
    text = write_report(tmp_path).read_text()
    assert "| 2 | 2.00x |" in _row(text, "w", "32", "mcts-single:a", "mcts-single:b")
    assert "| 2 | 4.00x |" in _row(text, "w", "32", "mcts-single:a", "mcts-single:c")
    assert "| 2 | 2.00x |" in _row(text, "w", "32", "mcts-single:b", "mcts-single:c")
    assert "| w | 32 | mcts-single:b | mcts-single:a |" not in text


def test_one_seed_gives_no_interval(tmp_path):
    _settings(tmp_path)
    append_record(tmp_path / RESULTS, _record("w", "untuned", 0, 0, 1.0))
    append_record(tmp_path / RESULTS, _record("w", "random", 32, 0, 0.5))
    text = write_report(tmp_path).read_text()
    assert "| 1 | 2.00x | none (1 seed) | none (1 seed) | 1 / commit unknown / load unknown | one seed: no interval |" \
        in _row(text, "w", "32", "random", "untuned")


def test_percent_of_peak_uses_the_measured_peak_and_names_it(tmp_path):
    _settings(tmp_path, peak_measured_gflops=50.0, peak_measured_how="a 1024^3 sgemm in numpy, best of 5")
    append_record(tmp_path / RESULTS, _record("w", "random", 32, 0, 0.01))  # 1 GFLOP in 10 ms: 100 GFLOP/s
    text = write_report(tmp_path).read_text()
    assert "% of peak is of the measured peak 50 GFLOP/s (a 1024^3 sgemm in numpy, best of 5)." in text
    assert "| random | 32 | 1/1 | 10 ms | 10 ms - 10 ms | 10 ms | 1.00 | 100.0 | 200.0% |" in text


def test_percent_of_peak_divides_each_cell_by_its_own_runs_peak(tmp_path):
    """A machine that slowed between two runs of one folder: each cell is judged against the peak
    measured in its own run; a cell recorded before runs stored a peak uses bench.json's."""
    _settings(tmp_path, peak_measured_gflops=200.0, peak_measured_how="first run")
    for seed, (latency, peak) in enumerate([(0.01, 200.0), (0.02, 100.0), (0.02, None)]):
        record = _record("w", "random", 32, seed, latency)  # 1 GFLOP: 100 and 50 GFLOP/s
        if peak:
            record["peak"] = {"gflops": peak, "how": "FMA kernel"}
        append_record(tmp_path / RESULTS, record)
    text = write_report(tmp_path).read_text()
    # shares 100/200, 50/100, 50/200 -> median 50%; bench.json's peak alone would say 25%
    assert _row(text, "random", "32").startswith("| random | 32 | 3/3 | 20 ms | 10 ms - 20 ms | 20 ms | 1.00 | 50.0 | 50.0% |")
    assert "2 measured peaks here, 100-200 GFLOP/s" in text
    assert "1 cells recorded before runs stored a peak use the one above" in text
    assert "% of peak is of the measured peak" not in text


def test_a_method_is_compared_with_itself_on_the_stock_space(tmp_path):
    _settings(tmp_path)
    for seed, (widened, stock) in enumerate([(0.010, 0.020), (0.010, 0.040)]):
        append_record(tmp_path / RESULTS, _record("w", "mcts", 32, seed, widened))
        append_record(tmp_path / RESULTS, _record("w", "mcts@stock", 32, seed, stock))
    text = write_report(tmp_path).read_text()
    assert "### Widened space over another space" in text
    assert "| 2 | 2.83x |" in _row(text, "w", "32", "mcts", "mcts@stock")  # 2x and 4x, paired by seed


def test_torn_and_foreign_lines_do_not_crash_the_report(tmp_path):
    _settings(tmp_path)
    for seed in range(2):
        append_record(tmp_path / RESULTS, _record("w", "untuned", 0, seed, 1.0))
        append_record(tmp_path / RESULTS, _record("w", "random", 32, seed, 0.5))
    bad_cell = _record("w", "random", 32, 5, 0.5)
    bad_cell["cell"]["seed"] = "five"
    odd = _record("w", "random", 32, 6, "fast")  # a cell whose numbers are not numbers
    odd.update(history="x", info=[1], provenance="yes", load={"flagged": "no"}, wall_s=None)
    with open(tmp_path / RESULTS, "ab") as f:
        for line in (b"[1, 2]", b'"text"', b'{"foo": 1}', b"\xff\xfe not utf-8", json.dumps(bad_cell).encode(),
                     json.dumps(odd).encode(), b'{"cell": {"key": "torn'):
            f.write(line + b"\n")
    assert main(["report", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "5 cells in `results.jsonl`; 6 lines skipped" in text  # `odd` is a cell: kept, its latency ignored
    assert "| random | 32 | 2/3 |" in text
    assert "| w\\|random\\|32\\|6 | ok, but no usable latency_s |" in text
    assert "| 2 | 2.00x |" in _row(text, "w", "32", "random", "untuned")


def test_corrupt_settings_is_one_error_line(tmp_path, capsys):
    (tmp_path / SETTINGS).write_text("{not json")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shared-mcts: error: ") and "corrupt" in err and err.count("\n") == 1
    assert not (tmp_path / "report.md").exists()


def test_model_usage_table_is_per_model_mean_over_seeds(tmp_path):
    _settings(tmp_path)
    for seed, calls in enumerate([2, 4]):
        record = _record("w", "mcts-single:local:smollm2", 32, seed, 0.01)
        record["info"] = {"per_model": {
            "sample": {"measured": 4},
            "local:smollm2": {"expansions": calls, "calls": calls, "edits": 10, "valid_edits": 5 * seed,
                              "prompt_tokens": 1000, "completion_tokens": 100, "model_seconds": 3.0, "fallbacks": 1},
            "mutate<b>": {"expansions": 1, "edits": 8, "valid_edits": 8}}}
        append_record(tmp_path / RESULTS, record)
    text = write_report(tmp_path).read_text()
    assert "| w | mcts-single:local:smollm2 | 32 | local:smollm2 | 3.0 | 3.0 | 25% of 10.0 | 1100 | 3.0 | 0 | 1.0 |" in text
    assert "mutate&lt;b&gt;" in text and "| sample |" not in text


def test_cost_table_names_the_strong_model_and_its_share(tmp_path):
    _settings(tmp_path)
    for seed in (0, 1):
        record = _record("w", "shared:bandit", 32, seed, 0.01)
        record["info"] = {"strongest": "expert", "per_model": {
            "expert": {"expansions": 2, "calls": 2, "dollars": 2.0},
            "local:smollm2": {"expansions": 6, "calls": 7, "dollars": 0.01, "prompt_tokens": 900, "completion_tokens": 100,
                              "model_seconds": 30.0}}}
        append_record(tmp_path / RESULTS, record)
    older = _record("w", "shared:bandit", 32, 2, 0.01)  # from before runs named their strong model
    older["info"] = {"per_model": {"local:smollm2": {"expansions": 8, "calls": 8}}}
    append_record(tmp_path / RESULTS, older)
    text = write_report(tmp_path).read_text()
    assert "| w | shared:bandit | 32 | expert | 2.0 | 25% | 2 | 2.01 | 1000 | 30.0 | 10 ms |" in text
    assert (tmp_path / "latency_vs_cost.png").exists()


def test_shared_tree_verdict_is_non_inferiority_at_half_the_strong_cost(tmp_path):
    _settings(tmp_path)

    def cell(method, seed, latency, expert_calls, smollm2_calls=0):
        record = _record("w", method, 32, seed, latency)
        per_model = {"expert": {"expansions": expert_calls, "dollars": 0.01 * expert_calls}}
        if smollm2_calls:
            per_model["local:smollm2"] = {"expansions": smollm2_calls, "calls": smollm2_calls, "dollars": 0.001}
        record["info"] = {"per_model": per_model, "strongest": "expert"}
        return record

    noise = [1.0, 1.01, 0.99, 1.0, 1.0]  # per seed: bandit and phase are as fast as expert, within 1%
    wide = [0.6, 1.5, 0.7, 1.4, 0.9]  # colt: geomean 0.96x, an interval that reaches 1 but starts far below 0.95
    for seed in range(5):
        append_record(tmp_path / RESULTS, cell("mcts-single:expert", seed, 0.010, 8))
        append_record(tmp_path / RESULTS, cell("mcts-single:mutate", seed, 0.020, 0))
        append_record(tmp_path / RESULTS, cell("shared:bandit", seed, 0.010 / noise[seed], 2, smollm2_calls=4))
        append_record(tmp_path / RESULTS, cell("shared:phase", seed, 0.010 / noise[seed], 6, smollm2_calls=2))
        append_record(tmp_path / RESULTS, cell("shared:colt", seed, 0.010 / wide[seed], 1, smollm2_calls=4))
    text = write_report(tmp_path).read_text()
    assert "**`expert` is a non-LLM stand-in" in text
    assert "lower bound of the t interval of its speed is at least 0.95" in text
    best = "mcts-single:expert (best single)"
    bandit = _row(text, "w", "32", "shared:bandit", best)
    assert "| 2.0 / 8.0 | 0.02 / 0.08 | 5 / commit unknown / load unknown | yes | < 10 seeds: not a headline |" in bandit
    assert "| no: 75% of its strong $ |" in _row(text, "w", "32", "shared:phase", best)
    colt_t = t_geomean_interval(wide)
    assert colt_t.low < 0.95 < 1.0 < colt_t.high  # the old rule (high >= 1) would have called this a match
    colt = _row(text, "w", "32", "shared:colt", best)
    assert f"| {colt_t.low:.2f}-{colt_t.high:.2f} |" in colt
    assert f"| no: lower bound {colt_t.low:.2f} < 0.95 |" in colt
    assert f"| 5 | {geomean(wide):.2f}x |" in colt  # 0.96x


def test_best_metaschedule_is_taken_on_the_same_design_space(tmp_path):
    _settings(tmp_path)
    latencies = {"metaschedule": 0.020, "metaschedule@stock": 0.010, "mcts": 0.005, "mcts@stock": 0.010}
    for seed in range(3):
        for method, latency in latencies.items():
            record = _record("w", method, 32, seed, latency)
            record.update(provenance=_provenance(), load=_load())
            append_record(tmp_path / RESULTS, record)
    text = write_report(tmp_path).read_text()
    # mcts searched the widened space: compared with MetaSchedule on the widened space (4x), not with the
    # faster stock-space configuration; mcts@stock with MetaSchedule on the stock space (1x)
    assert "| 3 | 4.00x |" in _row(text, "w", "32", "mcts", "best MetaSchedule: metaschedule")
    assert "| 3 | 1.00x |" in _row(text, "w", "32", "mcts@stock", "best MetaSchedule @stock: metaschedule@stock")
    assert "| w | 32 | stock | metaschedule@stock | metaschedule@stock 10 ms |" in text


def test_weight_packing_left_out_of_the_latency_is_reported(tmp_path):
    _settings(tmp_path)
    for seed in range(2):
        record = _record("w", "mcts", 32, seed, 0.010)
        record.update(provenance=_provenance(), load=_load(), packs_weights=True, latency_inkernel_s=0.011)
        append_record(tmp_path / RESULTS, record)
    text = write_report(tmp_path).read_text()
    assert "## Weight packing" in text and "excludes that packing" in text
    assert "| w | mcts | 32 | 2 | 10 ms | 11 ms | 1.10 |" in text
