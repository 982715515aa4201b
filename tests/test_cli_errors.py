"""Bad input: one line `shared-mcts: error: ...`, exit code 2, no traceback, checked before any
measurement, and nothing written: the command's folders are left exactly as they were."""

import json
import os
import stat

import pytest

from shared_mcts.cli import main

from .conftest import DATA


def _snapshot(root):
    """Every path under root with its bytes (files) or None (folders), to prove nothing changed."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _fixtures(tmp):
    """Inputs the rows refer to by name (written before the snapshot)."""
    (tmp / "afile").write_text("not a folder\n")
    readonly = tmp / "readonly"
    readonly.mkdir()
    readonly.chmod(stat.S_IRUSR | stat.S_IXUSR)
    (tmp / "text.gguf").write_text("this is a text file, not a model\n")
    (tmp / "garbage.gguf").write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    busy = tmp / "busy"  # a folder of the user's: a database/ and a file of theirs
    (busy / "database").mkdir(parents=True)
    (busy / "database" / "theirs.json").write_text("{}\n")
    (busy / "notes.txt").write_text("mine\n")
    damaged = tmp / "damaged-run"
    damaged.mkdir()
    (damaged / "tree.json").write_text('{"nodes": [{"id": 0, "par')
    bench = tmp / "damaged-bench"
    bench.mkdir()
    (bench / "bench.json").write_text('{"target": {"kind": "llv')
    unfinished = tmp / "unfinished"  # a run interrupted after its start record
    unfinished.mkdir()
    start = {"event": "start", "workload": "llama-attention", "workload_arg": "llama-attention", "trials": 12, "seed": 0,
             "models": ["expert", "mutate"], "models_arg": "expert,mutate", "router": "round-robin",
             "target": {"kind": "llvm", "mcpu": "cascadelake", "num-cores": 1}, "untuned_latency_s": 0.01}
    (unfinished / "ledger.jsonl").write_text(json.dumps(start) + "\n")


CUDA = '{"kind": "cuda"}'
AARCH64 = '{"kind": "llvm", "mcpu": "cortex-a72"}'
TOO_MANY_CORES = '{"kind": "llvm", "mcpu": "cascadelake", "num-cores": 999}'
BENCH = ["bench", "--workloads", "llama-attention", "--trials", "2"]

ROWS = [
    # data loss: a folder that holds anything but a run of the same arguments
    (["tune", "llama-mlp", "--models", "expert", "--out", "busy"], "is not empty and holds no tuning run"),
    (["tune", "llama-mlp", "--models", "expert", "--out", ""], "--out is empty"),
    ([*BENCH, "--methods", "untuned", "--out", ""], "--out is empty"),
    # --out where no folder can be made
    (["tune", "llama-mlp", "--models", "expert", "--out", "afile/run"], "afile is a file, not a folder"),
    (["tune", "llama-mlp", "--models", "expert", "--out", "readonly/run"], "readonly is not writable"),
    (["tune", "llama-mlp", "--models", "expert", "--out", "x" * 300], "is 300 bytes long"),
    ([*BENCH, "--methods", "untuned", "--out", "afile/bench"], "afile is a file, not a folder"),
    # arguments
    (["tune", "llama-mlp", "--models", ",,", "--out", "x"], "an empty name in the list"),
    (["tune", "llama-mlp", "--models", "expert,,mutate", "--out", "x"], "an empty name in the list"),
    (["tune", "llama-mlp", "--models", "expert", "--remeasure-repeat", "-1", "--out", "x"],
     "--remeasure-repeat must be positive"),
    (["tune", "llama-mlp", "--models", "expert", "--seed", "-1", "--out", "x"], "--seed: must be 0 or more"),
    (["check", "llama-mlp", "--seed", "-1"], "--seed: must be 0 or more"),
    (["tune", "llama-mlp", "--trials", "many", "--out", "x"], "tune: argument --trials: invalid int value"),
    (["tune", str(DATA / "small_matmul.py"), "--models", "expert", "--out", "x"],
     "for a Python file name the function that returns the PrimFunc"),
    # local models that are not models
    (["tune", "llama-mlp", "--models", "local:text.gguf,expert", "--out", "x"], "is not a GGUF file"),
    (["tune", "llama-mlp", "--models", "local:garbage.gguf,expert", "--out", "x"], "llama.cpp cannot read it"),
    ([*BENCH, "--methods", "untuned,mcts", "--models", "local:text.gguf,expert", "--out", "x"], "is not a GGUF file"),
    ([*BENCH, "--methods", "untuned,mcts-single:local:text.gguf", "--out", "x"], "is not a GGUF file"),
    ([*BENCH, "--methods", "untuned,mcts-single:openai:gpt-4o-mini", "--out", "x"],
     "environment variable OPENAI_API_KEY is not set"),
    # targets other than x86-64 CPUs, and more cores than this machine has
    (["tune", "llama-mlp", "--models", "expert", "--target", CUDA, "--out", "x"],
     'only x86-64 CPU targets ("kind": "llvm") are supported, not "cuda" (and this machine has no CUDA device)'),
    (["check", "llama-mlp", "--target", CUDA], "only x86-64 CPU targets"),
    ([*BENCH, "--methods", "untuned", "--target", CUDA, "--out", "x"], "only x86-64 CPU targets"),
    (["tune", "llama-mlp", "--models", "expert", "--target", AARCH64, "--out", "x"],
     "'cortex-a72' is an aarch64 CPU: only x86-64 CPU targets are supported"),
    (["tune", "llama-mlp", "--models", "expert", "--target", TOO_MANY_CORES, "--out", "x"],
     '"num-cores" 999 is more than the'),
    (["target", "--target", TOO_MANY_CORES], '"num-cores" 999 is more than the'),
    ([*BENCH, "--methods", "untuned", "--target", TOO_MANY_CORES, "--out", "x"], '"num-cores" 999 is more than the'),
    # --resume takes the run's own arguments: one given with another value would be ignored
    (["tune", "--resume", "unfinished", "--trials", "8"], "--trials 8 differs from the run's (12)"),
    (["tune", "--resume", "unfinished", "--models", "expert"], "--models expert differs from the run's (expert,mutate)"),
    (["tune", "--resume", "unfinished", "--out", "x"], "--out x differs from the run's"),
    (["tune", "flux-conv", "--resume", "unfinished"], "continues a run of llama-attention"),
    # damaged files written by a run or a bench
    (["show", "damaged-run"], "tree.json is damaged: not valid JSON"),
    (["report", "damaged-bench"], "bench.json is corrupt"),
]


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    _fixtures(tmp_path)
    if os.geteuid() == 0:  # root may write anywhere: make `readonly` read-only for us as a user would see it
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path).endswith("readonly")
                            else real_access(path, mode, **kw))
    yield tmp_path
    (tmp_path / "readonly").chmod(stat.S_IRWXU)


@pytest.mark.parametrize("argv, words", ROWS, ids=[" ".join(a)[:60] for a, _ in ROWS])
def test_bad_input_one_line_exit_2_nothing_written(inputs, capsys, argv, words):
    before = _snapshot(inputs)
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("shared-mcts: error: ") and words in lines[0], err
    assert err.count("shared-mcts") == 1, "the prefix is said once"
    assert _snapshot(inputs) == before, "a rejected command must write nothing"


def test_openai_endpoint_check_uses_OPENAI_BASE_URL(inputs, capsys, monkeypatch):
    from .llm_servers import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nobody listens there
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    code = main(["tune", "llama-mlp", "--models", "openai:gpt-4o-mini,expert", "--out", "x"])
    err = capsys.readouterr().err
    assert code == 2 and f"endpoint {url} is unreachable" in err and "api.openai.com" not in err, err
    assert not (inputs / "x").exists()


def test_version_and_defaults_in_help(capsys):
    import shared_mcts

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"shared-mcts {shared_mcts.__version__}"
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: 32)" in text and "(default: bandit)" in text and "(default: local:smollm2,expert,mutate)" in text
    assert "abmcts" in text and "(default: None)" not in text
