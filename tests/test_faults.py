"""Candidate faults are results, not the end of a run: a segfaulting candidate, a hanging one,
a runner worker that dies or freezes, and wrong results that must never become the best."""

import json

import cloudpickle
import pytest
import tvm

from shared_mcts.ledger import read_ledger
from shared_mcts.measure import MeasureConfig, Measurer

from . import faults

cloudpickle.register_pickle_by_value(faults)  # the runner's worker processes cannot import tests/

FAST = MeasureConfig(repeat=1, min_repeat_ms=0, run_timeout_s=3.0)


def test_a_segfaulting_and_a_hanging_candidate_are_recorded_and_the_runner_goes_on(target):
    mods = [tvm.IRModule({"main": kernel()}) for kernel in
            (faults.good_kernel, faults.segfaulting_kernel, faults.hanging_kernel, faults.good_kernel)]
    good, crashed, hung, good_again = Measurer(target, FAST).measure_mods(mods)
    assert good.ok and good_again.ok
    assert crashed.error_kind == "crash" and crashed.latency_s is None, crashed
    assert hung.error_kind == "timeout" and hung.latency_s is None, hung


def test_a_tune_survives_a_runner_that_segfaults_and_one_that_hangs(tmp_path, target):
    from shared_mcts.tuning import tune

    counter = tmp_path / "calls"
    evaluator = faults.faulty_run_evaluator(counter, crash_on={3}, hang_on={6})  # call 1 is the untuned program
    measurer = Measurer(target, FAST, run_evaluator=evaluator)
    result = tune("llama-attention", trials=8, models="expert,mutate", router="round-robin", out=tmp_path / "run",
                  measurer=measurer, remeasure_repeat=1)
    measured = [e for e in read_ledger(tmp_path / "run" / "ledger.jsonl") if e["event"] == "measurement"]
    kinds = [(e["error"] or "ok").split(":")[0] for e in measured]
    assert result.trials == len(measured) == 8
    assert kinds.count("crash") == 1 and kinds.count("timeout") == 1, kinds
    assert kinds.index("crash") < kinds.index("timeout") < 7  # later candidates were measured again
    assert kinds[-1] == "ok"
    assert result.correct and result.best_latency_s is not None
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert sum(m.get("failed", 0) for m in summary["per_model"].values()) == 2


def _tree_with(latencies):
    from shared_mcts.search.tree import ROOT, Tree

    class Candidate:
        def __init__(self, name):
            self.mod = name

    tree = Tree()
    for name, latency in latencies:
        tree.record(tree.add_child(ROOT, Candidate(name), "p", {}).id, latency)
    return tree


@pytest.mark.parametrize("count", [1, 7])
def test_when_no_checked_candidate_is_right_there_is_no_best(monkeypatch, count):
    import shared_mcts.tuning as tune_module
    from shared_mcts.tuning import MAX_CORRECTNESS_CHECKS, _checked_best

    class Wrong:
        ok, message = False, "max error 9"

    checked = []
    monkeypatch.setattr(tune_module, "check_correctness", lambda workload, mod, target: checked.append(mod) or Wrong())
    tree = _tree_with([(f"wrong{i}", 1.0 + i) for i in range(count)])
    node, correct, _ = _checked_best(tree, None, None, lambda n, m: None)
    assert node is None and correct is False
    assert len(checked) == min(count, MAX_CORRECTNESS_CHECKS)
