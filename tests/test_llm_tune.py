"""LLM proposers inside real tuning runs: the embedded SmolLM2 end to end, a run whose only
LLM endpoint fails on every call, and a replayed run that calls no model."""

import json

import pytest

import shared_mcts
from shared_mcts.ledger import read_ledger
from shared_mcts.llm.cache import CACHE_FILE
from shared_mcts.search.engine import SearchConfig

from .llm_servers import FaultServer

SMALL = SearchConfig(initial_samples=2, batch_size=2, proposals_per_expansion=4)


@pytest.fixture(scope="module")
def smollm2_run(tmp_path_factory, target):
    out = tmp_path_factory.mktemp("smollm2") / "run"
    result = shared_mcts.tune("llama-attention", trials=6, seed=0, models="local:smollm2", out=out, target=target,
                              search_config=SMALL, remeasure_repeat=1)
    return out, result


def test_smollm2_tune_records_every_call_in_the_ledger(smollm2_run):
    out, result = smollm2_run
    assert result.trials == 6 and result.correct
    events = read_ledger(out / "ledger.jsonl")
    calls = [e for e in events if e["event"] == "proposal" and e["proposer"] == "local:smollm2"]
    assert calls, "the LLM was never asked"
    for e in calls:
        attempts = e["log"]["call"]["attempts"]
        assert attempts and all(a["model"] == "local:smollm2" for a in attempts)
        assert e["cost"]["calls"] == len(attempts)
        assert e["cost"]["prompt_tokens"] == sum(a["prompt_tokens"] for a in attempts) > 0
        assert e["cost"]["seconds"] > 0
        assert e["edits"] == e["valid"] + len(e["invalid"])
    stats = result.per_model["local:smollm2"]
    assert stats.calls == sum(e["cost"]["calls"] for e in calls)
    assert stats.prompt_tokens == sum(e["cost"]["prompt_tokens"] for e in calls)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["per_model"]["local:smollm2"]["calls"] == stats.calls
    # Every measured node names the proposal it came from, and that proposal's model.
    proposals = {e["proposal"]: e for e in events if e["event"] == "proposal"}
    for m in (e for e in events if e["event"] == "measurement" and e["proposer"] != "sample"):
        assert proposals[m["proposal"]]["proposer"] == m["proposer"]
    cached = [json.loads(line) for line in (out / CACHE_FILE).read_text().splitlines()]
    assert len(cached) == sum(1 for e in calls for a in e["log"]["call"]["attempts"] if a["ok"])


def test_replay_reproduces_the_run_without_calling_a_model(smollm2_run, tmp_path, target, monkeypatch):
    import shared_mcts.proposers as proposers

    def no_backend(spec):
        raise AssertionError("a replayed run must not create a model backend")

    monkeypatch.setattr(proposers, "make_backend", no_backend)
    out, _ = smollm2_run
    again = shared_mcts.tune("llama-attention", trials=6, seed=0, models="local:smollm2", out=tmp_path / "replay",
                             target=target, search_config=SMALL, remeasure_repeat=1, replay=out)
    assert again.trials == 6 and again.timing.replayed_measurements == 6

    def steps(path):
        return [(e["event"], e.get("proposer"), e.get("key"), e.get("latency_s"), json.dumps(e.get("edit")))
                for e in read_ledger(path) if e["event"] in ("proposal", "measurement")]

    assert steps(tmp_path / "replay" / "ledger.jsonl") == steps(out / "ledger.jsonl")
    calls = [e for e in read_ledger(tmp_path / "replay" / "ledger.jsonl")
             if e["event"] == "proposal" and e["proposer"] == "local:smollm2"]
    assert calls and all(a["cached"] for e in calls for a in e["log"]["call"]["attempts"])


def test_a_run_whose_llm_always_fails_finishes_with_the_fallback(tmp_path, target, run_cli):
    faults = FaultServer()
    try:
        models = tmp_path / "models.toml"
        models.write_text(f'[models.broken]\nbackend = "openai"\nmodel = "x"\nbase_url = "{faults.url("500")}"\n'
                          'api_key_env = ""\nmax_retries = 1\nfallback = "expert"\n')
        code, out, err = run_cli("tune", "llama-attention", "--models", models, "--trials", "6", "--out",
                                 tmp_path / "run", "--remeasure-repeat", "1")
    finally:
        faults.close()
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["trials"] == 6
    broken = summary["per_model"]["broken"]
    assert broken["fallbacks"] == broken["expansions"] >= 1
    assert broken["failed_calls"] == broken["calls"] == 2 * broken["expansions"]
    assert summary["per_model"]["expert"]["expansions_as_fallback"] == broken["expansions"]
    assert "every call to broken failed" in summary["stop_reason"] and "by its fallback expert" in summary["stop_reason"]
