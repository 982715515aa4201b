"""The bench harness end to end on a tiny workload, including a kill -9 and a resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from shared_mcts.bench.matrix import parse_int_list
from shared_mcts.bench.report import write_report
from shared_mcts.bench.run import run_bench
from shared_mcts.bench.store import RESULTS, append_record, read_records
from shared_mcts.errors import UserError
from shared_mcts.measure import MeasureConfig
from shared_mcts.progress import Progress

from .conftest import DATA

TINY = f"{DATA / 'small_matmul.py'}:matmul"
FAST = MeasureConfig(repeat=2, min_repeat_ms=5)


def test_int_lists():
    assert parse_int_list("0-4", "seeds") == [0, 1, 2, 3, 4]
    assert parse_int_list("32,64, 32", "trials") == [32, 64]
    assert parse_int_list("0-1,5", "seeds") == [0, 1, 5]
    for bad in ("a", "", "3-1"):
        with pytest.raises(UserError):
            parse_int_list(bad, "seeds")
    with pytest.raises(UserError, match="at least 1"):
        parse_int_list("0", "--trials", minimum=1)


def test_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / RESULTS
    append_record(path, {"cell": {"key": "a"}})
    with open(path, "a") as f:
        f.write('{"cell": {"key": "b"')  # killed mid-write
    assert [r["cell"]["key"] for r in read_records(path)] == ["a"]


def _keys(out):
    return [r["cell"]["key"] for r in read_records(out / RESULTS)] if out.exists() else []


def test_bench_kill_9_then_resume(tmp_path, target):
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "shared_mcts", "bench", "--workloads", TINY, "--methods", "untuned,random",
           "--trials", "3", "--seeds", "0,1", "--out", str(out), "--repeat", "2", "--min-repeat-ms", "5",
           "--remeasure-repeat", "3", "--no-anchors", "--target", json.dumps(target)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not _keys(out):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_records(out / RESULTS)
    assert 1 <= len(before) < 4, "the kill should land mid-bench"

    # Resume in-process and finish.
    new = run_bench([TINY], ["untuned", "random"], [3], [0, 1], out, target, FAST, Progress(stream=open(os.devnull, "w")),
                    remeasure_repeat=3)
    after = read_records(out / RESULTS)
    keys = [r["cell"]["key"] for r in after]
    assert len(keys) == len(set(keys)) == 4, keys
    assert after[: len(before)] == before, "finished cells must be kept, not redone"
    assert len(new) == 4 - len(before)
    for r in after:
        assert r["status"] == "ok", r
        assert r["check"]["ok"]
        if r["cell"]["method"] == "random":
            assert len(r["history"]) == 3

    # Nothing left to do: a third run measures nothing.
    assert run_bench([TINY], ["untuned", "random"], [3], [0, 1], out, target, FAST,
                     Progress(stream=open(os.devnull, "w"))) == []

    report = write_report(out).read_text()
    assert "| random | 3 | 2/2 |" in report
    assert "| untuned | - | 2/2 |" in report
    assert (out / "latency_vs_trials.png").stat().st_size > 1000


def test_bench_refuses_a_folder_measured_with_another_target(tmp_path, target):
    out = tmp_path / "bench"
    run_bench([TINY], ["untuned"], [1], [0], out, target, FAST, Progress(stream=open(os.devnull, "w")), remeasure_repeat=2)
    other = dict(target, **{"num-cores": 1})
    with pytest.raises(UserError, match="another target"):
        run_bench([TINY], ["untuned"], [1], [0], out, other, FAST, Progress(stream=open(os.devnull, "w")))
    assert len(read_records(out / RESULTS)) == 1
