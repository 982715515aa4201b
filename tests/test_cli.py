"""Every bad input ends as one line on stderr and exit code 2; good commands work."""

import json
import subprocess
import sys

import pytest

from .conftest import DATA

BAD = [
    (["check", "no-such-workload"], "unknown workload"),
    (["check", "missing.py:f"], "not found"),
    (["check", f"{DATA / 'small_matmul.py'}:not_a_primfunc"], "expected a tvm PrimFunc"),
    (["check", str(DATA / "broken.tvmscript.py")], "not valid TVMScript"),
    (["check", "llama-mlp", "--target", "{oops"], "not valid JSON"),
    (["check", "llama-mlp", "--target", '{"kind": "llvm", "mcpu": "nonsense"}'], "LLVM"),
    (["check", "llama-mlp", "--repeat", "0"], "--repeat must be positive"),
    (["bench", "--workloads", "llama-mlp", "--methods", "nope", "--out", "x"], "unknown method"),
    (["bench", "--workloads", "llama-mlp", "--methods", "untuned", "--trials", "0", "--out", "x"], "at least 1"),
    (["bench", "--workloads", "llama-mlp", "--methods", "untuned", "--seeds", "a-b", "--out", "x"], "not an integer"),
    (["bench", "--workloads", "nope", "--methods", "untuned", "--out", "x"], "unknown workload"),
    # The shared tree's method is checked with the given models: past it, the next check speaks.
    (["bench", "--workloads", "llama-mlp", "--methods", "shared:bandit", "--models", "expert,mutate",
      "--trials", "0", "--out", "x"], "at least 1"),
    (["bench", "--workloads", "llama-mlp", "--methods", "shared:nope", "--models", "expert,mutate", "--out", "x"],
     "router"),
    (["bench", "--workloads", "llama-mlp"], "required"),
    (["report", "not-a-bench-dir"], "not a bench folder"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("argv, words", BAD)
def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shared-mcts: error:") and words in lines[0], err
    assert not (tmp_path / "x").exists(), "a rejected command must not create its output folder"


def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "shared_mcts", "check", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_workloads_lists_shapes_and_flops(run_cli):
    code, out, _ = run_cli("workloads")
    assert code == 0
    assert "llama-mlp" in out and "T=128 H=512 I=2048" in out and "0.806" in out


def test_check_builds_checks_and_times(run_cli, target):
    code, out, _ = run_cli("check", "llama-attention", "--target", json.dumps(target), "--min-repeat-ms", "10")
    assert code == 0, out
    assert "vs numpy: OK" in out and "untuned latency" in out and "% of" in out


def test_target_command(run_cli):
    code, out, _ = run_cli("target")
    assert code == 0 and "GFLOP/s" in out
