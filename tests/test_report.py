"""Report arithmetic on hand-made records (pure logic: no TVM run)."""

import json

import pytest

from shared_mcts.bench.report import write_report
from shared_mcts.bench.store import RESULTS, SETTINGS, append_record


def _record(workload, method, trials, seed, latency, history=None):
    return {"cell": {"workload": workload, "method": method, "trials": trials, "seed": seed,
                     "key": f"{workload}|{method}|{trials}|{seed}"},
            "status": "ok", "latency_s": latency, "flops": 1e9, "history": history or [latency],
            "wall_s": 10.0, "build_s": 4.0, "run_s": 2.0}


@pytest.fixture
def bench_dir(tmp_path):
    settings = {"target": {"kind": "llvm"}, "measure": {}, "host": {"model_name": "cpu", "peak_gflops": 100.0},
                "peak_formula": "test", "versions": {}}
    (tmp_path / SETTINGS).write_text(json.dumps(settings))
    for seed, (ms, ours) in enumerate([(0.010, 0.005), (0.020, 0.005)]):
        append_record(tmp_path / RESULTS, _record("w", "untuned", 0, seed, 1.0))
        append_record(tmp_path / RESULTS, _record("w", "numpy", 0, seed, 0.004))
        append_record(tmp_path / RESULTS, _record("w", "metaschedule", 32, seed, ms, [0.05, ms]))
        append_record(tmp_path / RESULTS, _record("w", "random", 32, seed, ours, [0.04, ours]))
    failed = _record("w", "random", 32, 2, None)
    failed.update(status="failed", error="every trial failed <script>")
    append_record(tmp_path / RESULTS, failed)
    return tmp_path


def test_report_table_and_paired_speedups(bench_dir):
    text = write_report(bench_dir).read_text()
    # median latency, GFLOP/s, % of the 100 GFLOP/s peak, speed relative to numpy
    assert "| metaschedule | 32 | 2/2 | 15 ms | 10 ms - 20 ms | 66.7 | 66.7% | 0.27x |" in text
    assert "| random | 32 | 2/3 | 5 ms |" in text
    # paired by seed: 10/5 = 2 and 20/5 = 4 → geomean 2.83
    assert "| w | 32 | random | metaschedule | 2 | 2.83x |" in text
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert (bench_dir / "latency_vs_trials.png").exists()
    assert (bench_dir / "speedups.png").exists()


def test_model_usage_table_is_per_model_mean_over_seeds(tmp_path):
    settings = {"target": {"kind": "llvm"}, "measure": {}, "host": {"model_name": "cpu", "peak_gflops": 100.0},
                "peak_formula": "test", "versions": {}}
    (tmp_path / SETTINGS).write_text(json.dumps(settings))
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
    settings = {"target": {"kind": "llvm"}, "measure": {}, "host": {"model_name": "cpu", "peak_gflops": 100.0},
                "peak_formula": "test", "versions": {}}
    (tmp_path / SETTINGS).write_text(json.dumps(settings))
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


def test_shared_tree_is_compared_with_the_best_single_model_and_the_strong_model_alone(tmp_path):
    settings = {"target": {"kind": "llvm"}, "measure": {}, "host": {"model_name": "cpu", "peak_gflops": 100.0},
                "peak_formula": "test", "versions": {}}
    (tmp_path / SETTINGS).write_text(json.dumps(settings))

    def cell(method, seed, latency, expert_calls, smollm2_calls=0):
        record = _record("w", method, 32, seed, latency)
        per_model = {"expert": {"expansions": expert_calls, "dollars": 0.01 * expert_calls}}
        if smollm2_calls:
            per_model["local:smollm2"] = {"expansions": smollm2_calls, "calls": smollm2_calls, "dollars": 0.001}
        record["info"] = {"per_model": per_model, "strongest": "expert"}
        return record

    for seed in range(3):
        append_record(tmp_path / RESULTS, cell("mcts-single:expert", seed, 0.010, 8))
        append_record(tmp_path / RESULTS, cell("mcts-single:mutate", seed, 0.020, 0))
        append_record(tmp_path / RESULTS, cell("shared:bandit", seed, 0.010, 2, smollm2_calls=4))  # same speed, 1/4 $
        append_record(tmp_path / RESULTS, cell("shared:phase", seed, 0.010, 6, smollm2_calls=2))  # same speed, 3/4 $
        append_record(tmp_path / RESULTS, cell("shared:colt", seed, 0.020, 1, smollm2_calls=4))  # 2x slower
    text = write_report(tmp_path).read_text()
    assert "**`expert` is a non-LLM stand-in" in text
    assert "| w | 32 | shared:bandit | mcts-single:expert (best single) | 3 | 1.00x (1.00-1.00) | 2.0 / 8.0 | 0.02 / 0.08 | yes |" in text
    assert "| w | 32 | shared:phase | mcts-single:expert (best single) | 3 | 1.00x (1.00-1.00) | 6.0 / 8.0 | 0.06 / 0.08 | no: 75% of its strong $ |" in text
    assert "| w | 32 | shared:colt | mcts-single:expert (best single) | 3 | 0.50x (0.50-0.50) | 1.0 / 8.0 | 0.01 / 0.08 | no: slower |" in text
