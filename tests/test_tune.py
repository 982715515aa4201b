"""A short real tune: run folder, database usable by TVM without our package, ledger."""

import json
import subprocess
import sys

import pytest

import shared_mcts
from shared_mcts.ledger import read_ledger

from .conftest import DATA


@pytest.fixture(scope="module")
def run(tmp_path_factory, target):
    out = tmp_path_factory.mktemp("tune") / "run"
    result = shared_mcts.tune("llama-attention", trials=8, seed=0, models=["expert", "mutate"], out=out, target=target,
                  remeasure_repeat=3)
    return out, result


def test_result_and_files(run):
    out, result = run
    assert result.trials == 8 and result.correct is True
    assert result.best_latency_s > 0 and result.speedup_over_untuned > 1
    for name in ("best.py", "best_trace.py", "tree.json", "ledger.jsonl", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 8 and summary["best_latency_s"] == result.best_latency_s
    assert set(summary["per_model"]) <= {"sample", "expert", "mutate"}
    assert summary["timing"]["build_s"] > 0 and summary["timing"]["run_s"] > 0


def test_ledger_and_tree_agree(run):
    out, result = run
    events = read_ledger(out / "ledger.jsonl")
    measurements = [e for e in events if e["event"] == "measurement"]
    assert len(measurements) == 8
    assert [e["trial"] for e in measurements] == list(range(1, 9))
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"
    tree = json.loads((out / "tree.json").read_text())
    assert len(tree["nodes"]) == 9
    assert min(n["latency_s"] for n in tree["nodes"] if n["latency_s"]) == result.search_best_s


def test_database_applies_the_best_schedule_without_our_package(run, target):
    out, result = run
    code = f"""
import json, sys
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
sys.modules.pop("shared_mcts", None)
db = ms.database.JSONDatabase(work_dir={str(out / 'database')!r})
records = db.get_all_tuning_records()
mod = records[0].workload.mod
sch = ms.tir_integration.compile_tir(db, mod, tvm.target.Target({json.dumps(target)!r}))
assert sch is not None
exe = tvm.compile(sch.mod, target=tvm.target.Target({json.dumps(target)!r}))
print(len(records), "ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("8 ok")


def test_out_folder_with_a_run_is_refused(run, run_cli):
    out, _ = run
    code, _, err = run_cli("tune", "llama-attention", "--trials", "2", "--out", out)
    assert code == 2 and "already holds a finished tuning run" in err


@pytest.mark.parametrize("argv, words", [
    (["tune", "llama-mlp", "--models", "gpt-9"], "unknown model"),
    (["tune", "llama-mlp", "--trials", "0"], "at least 1"),
    (["tune", "nope"], "unknown workload"),
    (["tune", "llama-mlp", "--models", "openai:gpt-4o-mini"], "environment variable OPENAI_API_KEY is not set"),
    (["tune", "llama-mlp", "--models", "local:/nowhere/model.gguf"], "existing .gguf file"),
    (["tune", "llama-mlp", "--models", "expert,expert"], "twice"),
    (["tune", "llama-mlp", "--models", "/nowhere/models.toml"], "models file not found"),
    (["tune", "llama-mlp", "--replay", "/nowhere/run"], "no such run"),
    (["tune", "llama-mlp", "--time-limit", "0"], "--time-limit must be positive"),
    (["tune", "llama-mlp", "--time-limit", "-5"], "--time-limit must be positive"),
    (["tune", "llama-mlp", "--run-timeout", "-1"], "timeouts must be positive"),
    (["tune", "llama-mlp", "--trials", "-3"], "at least 1"),
    (["tune", "llama-mlp", "--target", "{oops"], "not valid JSON"),
    (["tune", "missing.py:f"], "not found"),
    (["tune", str(DATA / "broken.tvmscript.py")], "not valid TVMScript"),
    (["tune", "llama-mlp", "--rpc", "127.0.0.1:9190"], "expected HOST:PORT:KEY"),
    (["tune", "llama-mlp", "--rpc", "127.0.0.1:port:key"], "is not a port number"),
    (["tune", "llama-mlp", "--models", "TOML:[models.a]\nbackend = 'builtin'\nmodel = 'expert'\nmax_calls = -1\n"],
     "max_calls must be a positive integer"),
    (["tune", "llama-mlp", "--models", "TOML:[models.a]\nbackend = 'builtin'\nmodel = 'expert'\nmax_dollars = 0\n"],
     "max_dollars must be positive"),
    (["tune", "llama-mlp", "--models", "TOML:[models.a\nbackend = 'builtin'\n"], "not valid TOML"),
    (["tune", "llama-mlp", "--models", "TOML:[models.a]\nbackend = 'openai'\nmodel = 'x'\napi_key_env = ''\n"
                                       "base_url = 'http://127.0.0.1:DEADPORT/v1'\n"], "is unreachable"),
    (["tune", "llama-mlp", "--models", "TOML:[models.a]\nbackend = 'openai'\nmodel = 'x'\napi_key_env = ''\n"
                                       "base_url = 'http://no-such-host.invalid/v1'\n"], "is unreachable"),
])
def test_tune_bad_input(run_cli, argv, words, monkeypatch, tmp_path):
    from .llm_servers import free_port

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    toml = [i for i, a in enumerate(argv) if a.startswith("TOML:")]
    if toml:  # a models file with this text (a dead port filled in)
        models = tmp_path / "models.toml"
        models.write_text(argv[toml[0]][5:].replace("DEADPORT", str(free_port())))
        argv = [*argv[:toml[0]], str(models), *argv[toml[0] + 1:]]
    code, _, err = run_cli(*argv, "--out", tmp_path / "x")
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists(), "a rejected command must not create its output folder"


def test_a_wrong_result_never_becomes_the_best(monkeypatch):
    import shared_mcts.tuning as tune_module
    from shared_mcts.search.tree import ROOT, Tree
    from shared_mcts.tuning import _checked_best

    class Candidate:
        def __init__(self, name):
            self.mod = name

    tree = Tree()
    for name, latency in (("wrong-fast", 1.0), ("right", 2.0), ("wrong-slow", 3.0)):
        tree.record(tree.add_child(ROOT, Candidate(name), "p", {}).id, latency)

    class Check:
        def __init__(self, ok):
            self.ok, self.message = ok, "" if ok else "max error 3.2"

    monkeypatch.setattr(tune_module, "check_correctness", lambda workload, mod, target: Check(not mod.startswith("wrong")))
    wrong = []
    node, correct, _ = _checked_best(tree, None, None, lambda n, m: wrong.append((n.candidate.mod, m)))
    assert node.candidate.mod == "right" and correct
    assert wrong == [("wrong-fast", "max error 3.2")]
