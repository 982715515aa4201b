"""The pure search core with fakes: no TVM, milliseconds per test."""

import math
import sys

import pytest

from shared_mcts.search.budget import Budget
from shared_mcts.search.engine import SearchConfig, SearchEngine
from shared_mcts.search.policies import PolicyConfig, can_expand, puct_score, select, uct_score
from shared_mcts.search.tree import ROOT, Tree

from .fakes import GridEvaluator, GridSpace, Records, StepProposer, StuckProposer


def test_search_core_imports_no_tvm_or_network():
    import subprocess

    code = ("import sys, shared_mcts.search.engine, shared_mcts.search.policies, shared_mcts.search.proposal; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tvm', 'tvm_ffi', 'openai', 'llama_cpp', 'requests', 'httpx')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def _engine(trials=20, seed=0, proposers=None, evaluator=None, **config):
    return SearchEngine(GridSpace(), evaluator or GridEvaluator(), proposers or {"step": StepProposer()},
                        Budget(trials), seed=seed, config=SearchConfig(**config))


def test_backup_mean_and_max_along_the_path():
    tree = Tree()
    a = tree.add_child(ROOT, "a", "p", {})
    b = tree.add_child(a.id, "b", "p", {"x": 1})
    tree.record(a.id, 2.0)  # reference latency: reward 0
    tree.record(b.id, 1.0)  # reward log 2
    assert tree.reference_latency_s == 2.0
    assert (tree.root.visits, a.visits, b.visits) == (2, 2, 1)
    assert tree.value(a, "max") == pytest.approx(math.log(2))
    assert tree.value(a, "mean") == pytest.approx(math.log(2) / 2)
    c = tree.add_child(a.id, "c", "p", {"x": 2})
    tree.record(c.id, None, "build failed")  # failures back up the worst reward seen
    assert c.status == "failed" and c.reward is None and a.visits == 3
    assert tree.value(a, "mean") == pytest.approx(math.log(2) / 3)
    assert tree.best() is b


def test_scores():
    assert uct_score(0.5, 10, 10, 0.0) == 0.5
    assert uct_score(0.5, 10, 1, 1.0) > uct_score(0.5, 10, 5, 1.0)
    assert puct_score(0.5, 9, 0, 1.0, prior=0.5) == pytest.approx(0.5 + 0.5 * 3)


def test_selection_descends_to_value_and_expands_by_exploration():
    tree = Tree()
    greedy = PolicyConfig(exploration=0.0)
    good = tree.add_child(ROOT, "g", "p", {})
    tree.record(good.id, 1.0)
    bad = tree.add_child(ROOT, "b", "p", {})
    tree.record(bad.id, 4.0)
    # no exploration: the best child is its own best option (expanding it has its value)
    assert select(tree, greedy) is good
    child = tree.add_child(good.id, "gg", "p", {})
    tree.record(child.id, 0.5)
    assert select(tree, greedy) is child
    # a huge exploration constant prefers the least-tried option: `bad` (1 visit) over
    # `good` (2 visits) and over re-sampling the root (2 children so far)
    assert select(tree, PolicyConfig(exploration=100.0)) is bad
    child.exhausted = True
    good.exhausted = True
    assert select(tree, greedy) is child  # nothing to expand below: returned for the root fallback
    assert not can_expand(child)


def test_puct_uses_priors():
    tree = Tree()
    a = tree.add_child(ROOT, "a", "p", {}, prior=0.1)
    b = tree.add_child(ROOT, "b", "p", {}, prior=0.9)
    tree.record(a.id, 1.0)
    tree.record(b.id, 1.0)
    tree.root.exhausted = True
    assert select(tree, PolicyConfig(kind="puct", exploration=1.0)) is b


@pytest.mark.parametrize("trials", [1, 3, 20, 37])
def test_exact_trial_budget(trials):
    evaluator = GridEvaluator()
    result = _engine(trials, evaluator=evaluator).run()
    assert result.trials == trials == len(evaluator.measured)
    assert len(set(evaluator.measured)) == trials, "no candidate is measured twice"
    assert len(result.tree.measured()) == trials
    assert result.stop_reason == "trial budget reached"


def test_same_seed_same_run_and_seed_matters():
    runs = [_engine(30, seed=s).run() for s in (7, 7, 8)]
    seqs = [[(n.candidate, n.parent, n.proposer) for n in r.tree.nodes[1:]] for r in runs]
    assert seqs[0] == seqs[1]
    assert seqs[0] != seqs[2]


def test_search_improves_over_random_sampling():
    """The tree search should find the grid optimum far better than its own initial samples."""
    result = _engine(40, seed=3, initial_samples=4).run()
    initial = min(n.latency_s for n in result.tree.nodes[1:5])
    assert result.best.latency_s < initial
    assert result.best.latency_s <= 3e-3  # within distance sqrt(2) of the optimum


def test_invalid_edits_are_counted_never_measured():
    evaluator = GridEvaluator()
    events = []
    engine = SearchEngine(GridSpace(), evaluator, {"step": StepProposer(invalid=True)}, Budget(12), seed=1,
                          observers=[Records(events)])
    result = engine.run()
    assert result.invalid_edits["step"] >= 2
    assert all(0 <= x < 16 and 0 <= y < 16 for x, y in evaluator.measured)
    reasons = {i["reason"] for e in events if e["event"] == "proposal" for i in e["invalid"]}
    assert reasons == {"out of range", "unknown knob z"}


def test_never_stops_early_when_a_proposer_finds_nothing_new():
    evaluator = GridEvaluator()
    result = _engine(15, proposers={"stuck": StuckProposer()}, evaluator=evaluator).run()
    assert result.trials == 15
    assert result.duplicate_edits["stuck"] >= 1
    assert all(n.proposer == "sample" for n in result.tree.nodes[1:])


def test_failed_candidates_are_results_and_never_best():
    broken = [(x, y) for x in range(16) for y in range(16) if (x + y) % 2]
    result = _engine(25, evaluator=GridEvaluator(broken=broken)).run()
    failed = [n for n in result.tree.nodes if n.status == "failed"]
    assert failed and all(n.latency_s is None for n in failed)
    assert result.best.status == "measured" and (sum(result.best.candidate) % 2 == 0)


def test_ranker_decides_what_gets_measured():
    class PreferSmallX:
        def __init__(self):
            self.updates = 0

        def score(self, candidates):
            return [-c[0] for c in candidates]

        def update(self, candidates, latencies):
            self.updates += 1

    evaluator = GridEvaluator()
    ranker = PreferSmallX()
    engine = SearchEngine(GridSpace(), evaluator, {"step": StepProposer()}, Budget(12), seed=2,
                          config=SearchConfig(batch_size=2, proposals_per_expansion=6), ranker=ranker)
    engine.run()
    assert ranker.updates == len(evaluator.calls)
    for batch in evaluator.calls[1:]:
        assert batch == sorted(batch, key=lambda c: c[0])


def test_wall_clock_limit_stops_the_search():
    budget = Budget(1000, wall_clock_s=0.0)
    result = SearchEngine(GridSpace(), GridEvaluator(), {"step": StepProposer()}, budget).run()
    assert result.stop_reason == "wall-clock limit reached" and result.trials == 0


def test_round_robin_spreads_expansions_over_models():
    a, b = StepProposer("a"), StepProposer("b")
    result = SearchEngine(GridSpace(), GridEvaluator(), {"a": a, "b": b}, Budget(40), seed=0).run()
    assert a.requests and b.requests
    assert abs(len(a.requests) - len(b.requests)) <= 1
    proposers = {n.proposer for n in result.tree.nodes[1:]}
    assert {"a", "b", "sample"} <= proposers


def test_ledger_cuts_a_torn_last_line_before_appending(tmp_path):
    from shared_mcts.ledger import Ledger, read_ledger

    path = tmp_path / "ledger.jsonl"
    path.write_text('{"event": "start"}\n{"event": "measurem')
    ledger = Ledger(path)
    ledger.write({"event": "resume"})
    ledger.close()
    assert [e["event"] for e in read_ledger(path)] == ["start", "resume"]


def test_a_lost_device_keeps_the_batch_measured_before_it_and_stops():
    from shared_mcts.errors import DeviceUnavailable

    class LosesDeviceOnTheThirdBatch(GridEvaluator):
        def measure(self, candidates):
            if len(self.calls) == 2:
                finished = GridEvaluator.measure(self, candidates[:1])
                raise DeviceUnavailable("gone", finished)
            return GridEvaluator.measure(self, candidates)

    events = []
    engine = _engine(20, evaluator=LosesDeviceOnTheThirdBatch())
    engine.observers.append(Records(events))
    with pytest.raises(DeviceUnavailable):
        engine.run()
    measured = [e for e in events if e["event"] == "measurement"]
    assert len(engine.tree.measured()) == len(measured) == engine.budget.used_trials == 4 + 4 + 1
    assert [e["trial"] for e in measured] == list(range(1, 10))
