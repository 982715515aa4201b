"""Routers and credit with fakes: pure, milliseconds."""

import random

import pytest

from shared_mcts.models import CallBudget
from shared_mcts.search.budget import Budget
from shared_mcts.search.credit import Credit
from shared_mcts.search.engine import SearchConfig, SearchEngine
from shared_mcts.search.proposal import Edit, Proposal, ProposalCost
from shared_mcts.search.routers import (
    BanditRouter,
    ColtRouter,
    ModelProfile,
    PhaseRouter,
    RouteContext,
    SingleRouter,
    make_router,
)
from shared_mcts.search.selector import TreePolicySelector
from shared_mcts.search.tree import ROOT, Tree

from .fakes import GridEvaluator, GridSpace, Records


class Toward:
    """Moves x or y one step toward the optimum (11, 5) (good) or away from it (bad); each
    call costs `price` and is refused once its budget is spent."""

    def __init__(self, name, good=True, price=0.0, max_calls=None):
        self.name, self.good, self.price = name, good, price
        self.budget = CallBudget(max_calls=max_calls)
        self.calls = 0

    def propose(self, request):
        assert self.budget.admit(0, 0, self.price) is None, "a router chose a model whose budget is spent"
        self.budget.charge(0, self.price)
        self.calls += 1
        x, y = request.knobs["x"], request.knobs["y"]
        sign = 1 if self.good else -1
        edits = []
        for dx, dy in ((1, 0), (0, 1), (2, 0), (0, 2)):
            nx = x + sign * dx * (1 if x < 11 else -1)
            ny = y + sign * dy * (1 if y < 5 else -1)
            edits.append(Edit({"x": nx, "y": ny}, "step"))
        return Proposal(edits, ProposalCost(calls=1, dollars=self.price))


def _profiles(proposers, strengths):
    return {n: ModelProfile(n, strengths[n], p.price, lambda p=p: p.budget.admit(0, 0, p.price) is None)
            for n, p in proposers.items()}


def _run(router, proposers, strengths, trials=40, seed=0, events=None):
    engine = SearchEngine(GridSpace(32), GridEvaluator(), proposers, Budget(trials), seed=seed,
                          config=SearchConfig(initial_samples=2, batch_size=2, proposals_per_expansion=4),
                          selector=TreePolicySelector(router), profiles=_profiles(proposers, strengths),
                          observers=[Records(events)] if events is not None else [])
    return engine, engine.run()


def _models(strong_calls=None):
    return {"cheap": Toward("cheap", good=True, price=0.0),
            "bad": Toward("bad", good=False, price=0.0),
            "strong": Toward("strong", good=True, price=1.0, max_calls=strong_calls)}


STRENGTH = {"cheap": 1, "bad": 0, "strong": 10}


@pytest.mark.parametrize("router", ["bandit", "colt", "phase", "round-robin", "single:strong"])
def test_every_router_respects_budgets_and_finishes_the_trials(router):
    models = _models(strong_calls=3)
    engine, result = _run(make_router(router, list(models)), models, STRENGTH)
    assert result.trials == 40
    assert models["strong"].calls <= 3


def test_single_router_gives_every_expansion_to_its_model():
    events = []
    models = _models()
    _run(SingleRouter("cheap"), models, STRENGTH, events=events)
    proposers = {e["proposer"] for e in events if e["event"] == "proposal"}
    assert proposers == {"cheap"} and models["strong"].calls == models["bad"].calls == 0


def test_when_no_model_may_act_the_engine_samples_instead():
    models = {"strong": Toward("strong", price=1.0, max_calls=2)}
    events = []
    _, result = _run(SingleRouter("strong"), models, {"strong": 1}, trials=20, events=events)
    assert result.trials == 20 and models["strong"].calls == 2
    assert sum(1 for e in events if e["event"] == "measurement" and e["proposer"] == "sample") >= 14


def test_credit_goes_to_the_model_whose_edit_was_measured():
    models = _models()
    engine, result = _run(make_router("round-robin", list(models)), models, STRENGTH)
    credit = result.credit.as_dict()
    by_model = {}
    for node in result.tree.nodes[1:]:
        by_model[node.proposer] = by_model.get(node.proposer, 0) + 1
    assert {n: credit[n]["measured"] for n in by_model} == by_model
    assert credit["cheap"]["gain"] > 0 and credit["bad"]["gain"] == 0
    assert credit["strong"]["dollars"] == pytest.approx(models["strong"].calls * 1.0)
    assert credit["bad"]["new_bests"] == 0


def test_credit_gain_and_new_best():
    credit = Credit()
    assert credit.on_measurement("sample", None, 4.0) == 0  # the first best is no improvement
    assert credit.on_measurement("a", 4.0, 2.0) == pytest.approx(0.6931, rel=1e-3)
    assert credit.on_measurement("b", 4.0, 3.0) > 0 and credit.stats["b"].new_bests == 0
    assert credit.stats["a"].new_bests == 1 and credit.since_new_best == 1
    credit.on_measurement("b", 3.0, None)
    assert credit.stats["b"].failed == 1 and credit.since_new_best == 2


def _ctx(credit, trials_used=0, total=32):
    profiles = {"cheap": ModelProfile("cheap", 1, 0.0), "strong": ModelProfile("strong", 10, 1.0)}
    return RouteContext(profiles, credit, trials_used, total)


def _node_tree():
    tree = Tree()
    node = tree.add_child(ROOT, "c", "sample", {})
    tree.record(node.id, 1.0)
    return tree, node


def test_bandit_escalates_exactly_when_the_search_stagnates():
    tree, node = _node_tree()
    router = BanditRouter(stagnation=8)
    credit = Credit()
    credit.on_measurement("sample", None, 1.0)
    # Cheap has found gains cheaply; strong was tried once and found little.
    router.on_expansion(node, tree, "cheap")
    router.on_measurement(node, node, "cheap", 0.5, False)
    router.on_expansion(node, tree, "strong")
    router.on_measurement(node, node, "strong", 0.01, False)
    credit.since_new_best = 7
    assert router.choose(node, tree, random.Random(0), _ctx(credit)) == "cheap"
    credit.since_new_best = 8
    assert router.choose(node, tree, random.Random(0), _ctx(credit)) == "strong"
    credit.since_new_best = 9  # escalated once: the next escalation waits for 16
    assert router.choose(node, tree, random.Random(0), _ctx(credit)) == "cheap"
    credit.since_new_best = 16
    assert router.choose(node, tree, random.Random(0), _ctx(credit)) == "strong"


def test_colt_escalates_after_k_regressions_of_cheaper_models_only():
    tree, node = _node_tree()
    worse = tree.add_child(node.id, "w", "cheap", {"x": 1})
    tree.record(worse.id, 2.0)
    better = tree.add_child(node.id, "b", "cheap", {"x": 2})
    tree.record(better.id, 0.5)
    router = ColtRouter(escalate_after=3, lam=1.0, exploration=0.0)  # φ only: cheap wins unless escalated
    router.strongest = "strong"
    ctx = _ctx(Credit())
    for _ in range(2):
        router.on_measurement(node, worse, "cheap", 0.0, False)
        assert router.choose(node, tree, random.Random(0), ctx) == "cheap"
    router.on_measurement(node, better, "cheap", 0.7, True)  # an improvement resets the count
    for _ in range(2):
        router.on_measurement(node, worse, "cheap", 0.0, False)
    assert router.choose(node, tree, random.Random(0), ctx) == "cheap"
    router.on_measurement(node, worse, "cheap", 0.0, False)
    assert router.choose(node, tree, random.Random(0), ctx) == "strong"
    assert router.choose(node, tree, random.Random(0), ctx) == "cheap"  # once, then back


def test_colt_follows_the_acting_models_choice_of_the_next():
    tree, node = _node_tree()
    router = ColtRouter(lam=1.0, exploration=0.0)
    ctx = _ctx(Credit())
    ctx.next_model_hint = "strong"
    assert router.choose(node, tree, random.Random(0), ctx) == "strong"
    assert ctx.next_model_hint is None and router.choose(node, tree, random.Random(0), ctx) == "cheap"


def test_phase_uses_cheap_models_first_then_the_strongest():
    tree, node = _node_tree()
    router = PhaseRouter(fraction=0.5)
    assert router.choose(node, tree, random.Random(0), _ctx(Credit(), trials_used=15)) == "cheap"
    assert router.choose(node, tree, random.Random(0), _ctx(Credit(), trials_used=16)) == "strong"


@pytest.mark.parametrize("router", ["bandit", "colt", "phase"])
def test_same_seed_same_decisions(router):
    runs = []
    for _ in range(2):
        events = []
        _run(make_router(router, ["cheap", "bad", "strong"]), _models(strong_calls=4), STRENGTH, events=events)
        runs.append([(e["event"], e["proposer"], e.get("node")) for e in events])
    assert runs[0] == runs[1]


def test_unknown_router_and_unknown_single_model():
    with pytest.raises(ValueError, match="unknown router"):
        make_router("greedy-llm", ["a"])
    with pytest.raises(ValueError, match="not one of the run's models"):
        make_router("single:b", ["a"])


def test_abmcts_drives_our_engine_through_treequest_ask_tell():
    pytest.importorskip("treequest")
    from shared_mcts.search.abmcts import ABMCTSSelector, speedup_score

    def run():
        events = []
        models = _models(strong_calls=3)
        engine = SearchEngine(GridSpace(32), GridEvaluator(), models, Budget(30), seed=3,
                              config=SearchConfig(initial_samples=2, batch_size=2, proposals_per_expansion=4),
                              profiles=_profiles(models, STRENGTH), observers=[Records(events)],
                              selector=ABMCTSSelector(speedup_score(1.0, 1e-3), seed=3))
        result = engine.run()
        return result, models, events

    result, models, events = run()
    assert result.trials == 30 and models["strong"].calls <= 3
    assert {e["proposer"] for e in events if e["event"] == "proposal"} <= {"cheap", "bad", "strong"}
    assert result.best.latency_s < 0.05  # it finds its way toward the optimum
    again, _, events_again = run()
    assert [(e["event"], e["proposer"], e.get("node")) for e in events] == \
        [(e["event"], e["proposer"], e.get("node")) for e in events_again]


def test_speedup_score_is_the_log_way_from_untuned_to_the_roofline():
    from shared_mcts.search.abmcts import speedup_score

    score = speedup_score(1.0, 0.01)
    assert score(1.0) == 0.0 and score(0.01) == 1.0 and score(0.1) == pytest.approx(0.5)
    assert score(None) == 0.0 and score(2.0) == 0.0 and score(0.001) == 1.0


def test_abmcts_survives_failed_candidates_at_its_root():
    # Seen in the issue-5 bench: a root expansion whose candidate failed was told to treequest
    # with state None, which treequest refuses for any node but its root.
    pytest.importorskip("treequest")
    from shared_mcts.search.abmcts import ABMCTSSelector, speedup_score

    models = _models(strong_calls=3)
    broken = {(x, y) for x in range(32) for y in range(32) if (x + y) % 2}
    engine = SearchEngine(GridSpace(32), GridEvaluator(broken=broken), models, Budget(30), seed=3,
                          config=SearchConfig(initial_samples=2, batch_size=2, proposals_per_expansion=4),
                          profiles=_profiles(models, STRENGTH), selector=ABMCTSSelector(speedup_score(1.0, 1e-3), seed=3))
    assert engine.run().trials == 30
