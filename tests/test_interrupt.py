"""Ctrl-C: a terminal sends SIGINT to the whole process group (ours, TVM's builder and runner
workers, their children). `tune` and `bench` must end with one line on stderr that says what
was kept and the exact command to resume, exit code 130, no traceback from any process, no
process left behind; and that command must finish the run."""

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import psutil

from shared_mcts.ledger import read_ledger

from .conftest import DATA

MATMUL = f"{DATA / 'small_matmul.py'}:matmul"


def _start(argv, cwd, marker):
    """`python -m shared_mcts ARGV` in its own process group (as a terminal starts it), its
    descendants recognizable by an environment variable."""
    env = dict(os.environ, SHARED_MCTS_TEST_MARKER=marker)
    return subprocess.Popen([sys.executable, "-m", "shared_mcts", *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(proc, condition, what, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"ended before {what}: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {what} in {timeout_s} s")
        time.sleep(0.02)


def _workers_busy(proc, count=3):
    """Builder and runner workers are alive (so the Ctrl-C reaches them too)."""
    return lambda: len(psutil.Process(proc.pid).children(recursive=True)) >= count


def _ctrl_c(proc):
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _processes_with(marker):
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("SHARED_MCTS_TEST_MARKER") == marker and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    return found


def _assert_clean_interrupt(code, err, marker):
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "Error" not in err, err
    said = [line for line in err.splitlines() if "interrupted" in line]
    assert len(said) == 1 and said[0] == err.strip().splitlines()[-1], err
    assert said[0].startswith("shared-mcts: interrupted: ")
    time.sleep(0.5)
    assert not _processes_with(marker), "a process of the interrupted command is still running"
    return said[0]


def _run_printed(line, cwd):
    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command[0] == "shared-mcts"
    return subprocess.run([sys.executable, "-m", "shared_mcts", *command[1:]], cwd=cwd, capture_output=True, text=True)


def test_guard_alone_one_line_130_children_killed_silently(tmp_path):
    """The mechanism without TVM: children started by the main thread and by a pool thread
    (as TVM's popen pools do) ignore the Ctrl-C, and are killed."""
    marker = uuid.uuid4().hex
    script = tmp_path / "guarded.py"
    script.write_text(textwrap.dedent("""
        import subprocess, sys, time
        from concurrent.futures import ThreadPoolExecutor
        from shared_mcts.interrupt import exit_on_interrupt

        child = [sys.executable, "-c", "import time; print('child up', flush=True); time.sleep(600)"]
        with exit_on_interrupt(lambda: "kept nothing; resume with: nothing"):
            subprocess.Popen(child)
            ThreadPoolExecutor(1).submit(subprocess.Popen, child).result()
            time.sleep(600)
    """))
    env = dict(os.environ, SHARED_MCTS_TEST_MARKER=marker)
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    _wait_for(proc, _workers_busy(proc, 2), "children")
    time.sleep(0.5)  # the children are past their start-up
    code, out, err = _ctrl_c(proc)
    line = _assert_clean_interrupt(code, err, marker)
    assert line == "shared-mcts: interrupted: kept nothing; resume with: nothing"


def _measured(run):
    ledger = run / "ledger.jsonl"
    return [e for e in read_ledger(ledger) if e["event"] == "measurement"] if ledger.exists() else []


def test_ctrl_c_in_tune_then_the_printed_command_finishes_the_run(tmp_path):
    trials, marker, run = 8, uuid.uuid4().hex, tmp_path / "run"
    proc = _start(["tune", MATMUL, "--models", "expert,mutate", "--router", "round-robin", "--trials", str(trials),
                   "--out", "run", "--remeasure-repeat", "1", "--repeat", "2"], tmp_path, marker)
    _wait_for(proc, lambda: len(_measured(run)) >= 2, "measurement")
    _wait_for(proc, _workers_busy(proc), "busy workers")
    code, out, err = _ctrl_c(proc)
    line = _assert_clean_interrupt(code, err, marker)
    kept = _measured(run)
    assert f"{len(kept)} measurements kept in run; resume with: shared-mcts tune --resume run " in line
    assert line.endswith("--remeasure-repeat 1 --repeat 2"), "the measurement settings are repeated"
    assert all(e.get("error") is None for e in kept), "the interrupt must not be recorded as a failed candidate"
    # A database left by an earlier attempt is kept beside the new one, never deleted.
    (run / "database").mkdir()
    (run / "database" / "earlier.json").write_text("{}\n")

    done = _run_printed(line, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _measured(run)
    assert len(after) == trials and len({e["key"] for e in after}) == trials
    assert after[:len(kept)] == kept, "what was kept is neither lost nor measured again"
    assert json.loads((run / "summary.json").read_text())["correct"]
    assert (run / "database.previous-1" / "earlier.json").read_text() == "{}\n"
    assert (run / "database" / "database_tuning_record.json").stat().st_size > 0


def test_ctrl_c_in_bench_keeps_finished_cells_and_records_no_failure(tmp_path):
    marker = uuid.uuid4().hex
    argv = ["bench", "--workloads", MATMUL, "--methods", "untuned,mcts", "--trials", "4", "--out", "b",
            "--no-anchors", "--remeasure-repeat", "1", "--repeat", "2"]
    results = tmp_path / "b" / "results.jsonl"
    proc = _start(argv, tmp_path, marker)
    _wait_for(proc, lambda: results.exists() and results.read_text().count("\n") >= 1, "first cell")
    _wait_for(proc, _workers_busy(proc), "busy workers")
    code, out, err = _ctrl_c(proc)
    line = _assert_clean_interrupt(code, err, marker)
    assert f"1 finished cell kept in {os.path.join('b', 'results.jsonl')}" in line
    assert line.endswith("resume with: " + shlex.join(["shared-mcts", *argv]))
    records = [json.loads(x) for x in results.read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok"], "the cell in flight must not be recorded as failed"

    done = _run_printed(line, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(x) for x in results.read_text().splitlines()]
    assert sorted(r["cell"]["method"] for r in records) == ["mcts", "untuned"]
    assert all(r["status"] == "ok" for r in records)
