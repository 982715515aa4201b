"""Budgets, retries, the replay cache and the LLM proposer, with fake backends (pure, fast)."""

import json
import random

import pytest

from shared_mcts.llm.backends import BackendError, Completion
from shared_mcts.llm.cache import CACHE_FILE, ReplayCache
from shared_mcts.llm.caller import ModelCaller
from shared_mcts.models import CallBudget, ModelSpec
from shared_mcts.proposers.llm import LLMProposer
from shared_mcts.search.proposal import Edit, Proposal, ProposalRequest
from shared_mcts.space.knobs import CATEGORICAL, TILE, Knob

MESSAGES = [{"role": "user", "content": "x" * 100}]
SCHEMA = {"type": "object"}


class ScriptedBackend:
    """Answers from a script: a string is a completion, a BackendError is raised."""

    def __init__(self, script, prompt_tokens=100, completion_tokens=50, seconds=2.0):
        self.script = list(script)
        self.calls = []
        self.sizes = (prompt_tokens, completion_tokens, seconds)

    def prompt_tokens(self, messages):
        return self.sizes[0]

    def complete(self, messages, schema, max_tokens, temperature, timeout_s, seed):
        self.calls.append({"max_tokens": max_tokens, "seed": seed})
        item = self.script.pop(0) if self.script else '{"edits": []}'
        if isinstance(item, Exception):
            raise item
        return Completion(item, self.sizes[0], min(self.sizes[1], max_tokens), self.sizes[2], "provider")


def _spec(**kw):
    base = dict(name="m", backend="openai", model="m", price_in_per_m=1e6, price_out_per_m=2e6, max_tokens=200,
                max_retries=2)
    base.update(kw)
    return ModelSpec(**base)


def _caller(spec, backend, **kw):
    sleeps = []
    caller = ModelCaller(spec, backend, sleep=sleeps.append, **kw)
    return caller, sleeps


def test_call_budget_is_never_exceeded_and_counts_every_attempt():
    spec = _spec(max_calls=3)
    backend = ScriptedBackend([BackendError("http_500", "boom", retryable=True), "{}", "{}", "{}", "{}"])
    caller, sleeps = _caller(spec, backend)
    results = [caller.call(MESSAGES, SCHEMA, seed=i) for i in range(4)]
    assert caller.budget.calls == 3 == len(backend.calls)
    assert [len(r.attempts) for r in results] == [2, 1, 0, 0]
    assert results[0].attempts[0].error_kind == "http_500" and results[0].text == "{}"
    assert results[2].refused == results[3].refused == "call budget of 3 spent"
    assert sleeps == [1.0]


def test_dollar_budget_admits_only_what_fits_in_the_worst_case():
    # prompt 100 tokens x $1 + up to 200 completion tokens x $2 = $500 worst case per call.
    spec = _spec(max_dollars=1000.0)
    backend = ScriptedBackend(["{}"] * 5, completion_tokens=50)  # actual: 100 + 100 = $200
    caller, _ = _caller(spec, backend)
    spent = [caller.call(MESSAGES, SCHEMA, seed=i) for i in range(6)]
    # $600 after 3 calls; a 4th could cost up to $500 more, so it is refused.
    assert sum(1 for r in spent if r.text is not None) == 3
    assert caller.budget.dollars == pytest.approx(600.0) and caller.budget.dollars <= spec.max_dollars
    assert "dollar budget" in spent[-1].refused


def test_token_budget_shrinks_the_last_answer_and_is_never_exceeded():
    spec = _spec(max_total_tokens=500, max_tokens=200)
    backend = ScriptedBackend(["{}"] * 5, prompt_tokens=100, completion_tokens=200)
    caller, _ = _caller(spec, backend)
    for i in range(5):
        caller.call(MESSAGES, SCHEMA, seed=i)
    assert [c["max_tokens"] for c in backend.calls] == [200, 100]
    assert caller.budget.tokens == 500


def test_retries_back_off_honour_retry_after_and_stop_on_client_errors():
    spec = _spec(max_retries=3)
    backend = ScriptedBackend([BackendError("http_429", "slow down", retryable=True, retry_after_s=7),
                               BackendError("timeout", "t", retryable=True),
                               BackendError("http_400", "bad request"), "{}"])
    caller, sleeps = _caller(spec, backend)
    result = caller.call(MESSAGES, SCHEMA, seed=0)
    assert result.text is None and [a.error_kind for a in result.attempts] == ["http_429", "timeout", "http_400"]
    assert sleeps == [7, 2.0]
    # A failed attempt is charged its prompt (our upper bound) so budgets stay on the safe side.
    assert all(a.prompt_tokens == 100 and a.tokens_source == "estimate" for a in result.attempts)


def test_cache_serves_repeated_prompts_and_replay_never_calls(tmp_path):
    spec = _spec()
    cache = ReplayCache(write_to=[tmp_path])
    backend = ScriptedBackend(['{"edits": 1}'])
    caller, _ = _caller(spec, backend, cache=cache)
    first = caller.call(MESSAGES, SCHEMA, seed=5)
    again = caller.call(MESSAGES, SCHEMA, seed=5)
    assert len(backend.calls) == 1 and again.text == first.text and again.cached
    assert again.cost().dollars == pytest.approx(first.cost().dollars)  # replay spends budgets as the original did

    replay = ModelCaller(spec, None, cache=ReplayCache(read_from=[tmp_path / CACHE_FILE]), replay_only=True)
    assert replay.call(MESSAGES, SCHEMA, seed=5).text == '{"edits": 1}'
    miss = replay.call(MESSAGES, SCHEMA, seed=6)  # another seed is another prompt+parameters key
    assert miss.text is None and miss.refused.startswith("replay")


def test_cache_survives_a_torn_last_line(tmp_path):
    cache = ReplayCache(write_to=[tmp_path])
    cache.put("k1", {"text": "a"})
    with open(tmp_path / CACHE_FILE, "a") as f:
        f.write('{"key": "k2", "te')
    assert ReplayCache(read_from=[tmp_path]).get("k1")["text"] == "a"
    again = ReplayCache(write_to=[tmp_path])  # appending after a torn line must not lose the next entry
    again.put("k3", {"text": "c"})
    assert ReplayCache(read_from=[tmp_path]).get("k3")["text"] == "c"


def test_call_budget_admit():
    budget = CallBudget(max_calls=2, max_total_tokens=100)
    assert budget.admit(50, 50, 0) is None
    assert "token" in budget.admit(50, 51, 0)
    budget.charge(10, 0)
    assert budget.completion_room(50, 80) == 40


# -- the proposer ------------------------------------------------------------------------------

KNOBS = {
    "c/j/tile": Knob("c/j/tile", TILE, (4, 4, 8), block="c", loop="j", extent=128, parts=3, max_innermost=64,
                     loop_kind="spatial", innermost_spatial=True),
    "root/unroll": Knob("root/unroll", CATEGORICAL, 0, choices=(0, 16, 64)),
}


class Fallback:
    name = "mutate"

    def propose(self, request):
        return Proposal([Edit({"root/unroll": 16}, "fallback")])


def _request(k=3):
    return ProposalRequest(node_id=1, candidate="cand", knobs=KNOBS, history=[], k=k, rng=random.Random(0),
                           hardware={"cores": 2})


def _proposer(answers, **spec_kw):
    caller, _ = _caller(_spec(**spec_kw), ScriptedBackend(answers))
    return LLMProposer("m", caller, {"name": "w"}, lambda c: "# schedule", Fallback())


def test_proposer_keeps_valid_edits_and_counts_invalid_ones():
    answer = json.dumps({"edits": [
        {"changes": {"c/j/tile": [2, 8, 8]}, "rationale": "ok"},
        {"changes": {"c/j/tile": [3, 3, 3]}, "rationale": "product is wrong"},
        {"changes": {"root/unroll": 7}, "rationale": "not allowed"},
        {"changes": {"nope": 1}, "rationale": "no such knob"}]})
    proposal = _proposer([answer]).propose(_request(k=4))
    assert [e.changes for e in proposal.edits] == [{"c/j/tile": [2, 8, 8]}]
    assert len(proposal.rejected) == 3 and proposal.fallback is None
    assert proposal.cost.calls == 1 and proposal.log["call"]["attempts"][0]["ok"]


@pytest.mark.parametrize("answers, why", [
    (['{"edits": [{"changes": {"c/j/tile": [5, 5, 5]}, "rationale": "x"}]}'], "no valid edit"),
    (["__import__('os').system('touch /tmp/pwned')"], "no valid edit"),
    ([BackendError("connection", "down", retryable=True)] * 3, "connection"),
])
def test_proposer_falls_back_when_no_edit_is_valid(answers, why):
    proposal = _proposer(answers).propose(_request())
    assert proposal.edits == [] and proposal.fallback_name == "mutate"
    assert proposal.fallback.edits[0].changes == {"root/unroll": 16}
    assert why in proposal.note and "fell back to mutate" in proposal.note


def test_fallback_edits_are_credited_to_the_fallback_by_the_engine():
    from shared_mcts.search.budget import Budget
    from shared_mcts.search.engine import SearchConfig, SearchEngine

    from .fakes import GridEvaluator, GridSpace, Records

    class Failing:
        name = "llm"

        def propose(self, request):
            fallback = Proposal([Edit({"x": (request.knobs["x"] + 1) % 16}, "fb")])
            return Proposal([], rejected=[{"changes": {"x": 99}, "reason": "bad"}], note="fell back to fb",
                            fallback=fallback, fallback_name="fb")

    events = []
    engine = SearchEngine(GridSpace(), GridEvaluator(), {"llm": Failing()}, Budget(10), seed=1,
                          config=SearchConfig(initial_samples=2, batch_size=1), observers=[Records(events)])
    result = engine.run()
    assert result.trials == 10
    measured = [e for e in events if e["event"] == "measurement" and e["proposer"] != "sample"]
    assert measured and all(e["proposer"] == "fb" for e in measured)
    proposals = [e for e in events if e["event"] == "proposal"]
    assert {e["proposer"] for e in proposals} == {"llm", "fb"}
    assert all(e["fallback_for"] == "llm" for e in proposals if e["proposer"] == "fb")
    assert result.invalid_edits == {"llm": len([e for e in proposals if e["proposer"] == "llm"])}
    by_id = {e["proposal"]: e for e in proposals}
    assert all(by_id[e["proposal"]]["proposer"] == "fb" for e in measured)


class NoCalls:
    def prompt_tokens(self, messages):
        return 100

    def complete(self, *args, **kwargs):
        raise AssertionError("a recorded attempt was made again")


def test_a_resumed_call_replays_its_recorded_failures_and_answer(tmp_path):
    spec = _spec(max_retries=2)
    backend = ScriptedBackend([BackendError("http_500", "boom", retryable=True), '{"edits": []}'])
    first, _ = _caller(spec, backend, cache=ReplayCache(write_to=[tmp_path]))
    original = first.call(MESSAGES, SCHEMA, seed=1)
    again, sleeps = _caller(spec, NoCalls(), cache=ReplayCache(write_to=[tmp_path]))
    resumed = again.call(MESSAGES, SCHEMA, seed=1)
    assert [(a.ok, a.error_kind) for a in resumed.attempts] == [(a.ok, a.error_kind) for a in original.attempts]
    assert resumed.text == original.text and again.budget.calls == first.budget.calls == 2
    assert again.budget.dollars == pytest.approx(first.budget.dollars) and sleeps == []


def test_failures_stay_in_the_run_folder_not_in_a_shared_cache(tmp_path):
    run, shared = tmp_path / "run", tmp_path / "shared"
    caller, _ = _caller(_spec(max_retries=0), ScriptedBackend([BackendError("http_500", "x", retryable=True)]),
                        cache=ReplayCache(write_to=[run, shared]))
    caller.call(MESSAGES, SCHEMA, seed=1)
    assert (run / CACHE_FILE).exists() and not (shared / CACHE_FILE).exists()


def test_an_attempt_killed_mid_call_is_charged_on_resume(tmp_path):
    class Killed(ScriptedBackend):
        def complete(self, *args, **kwargs):
            raise SystemExit("kill -9")

    journal = []
    spec = _spec(max_calls=2)
    caller, _ = _caller(spec, Killed([]), cache=ReplayCache(write_to=[tmp_path]),
                        journal=lambda event: journal.append(event.as_record()))
    with pytest.raises(SystemExit):
        caller.call(MESSAGES, SCHEMA, seed=1)
    assert [e["event"] for e in journal] == ["call_started"]
    resumed, _ = _caller(spec, ScriptedBackend(["{}"] * 3), cache=ReplayCache(write_to=[tmp_path]))
    assert resumed.charge_orphans(journal) == 1 and resumed.budget.calls == 1
    assert resumed.call(MESSAGES, SCHEMA, seed=1).text == "{}"
    assert resumed.call(MESSAGES, SCHEMA, seed=2).refused == "call budget of 2 spent"  # 1 lost + 1 made
