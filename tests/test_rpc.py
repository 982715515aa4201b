"""Remote measurement through TVM's real RPC tracker and server, started on 127.0.0.1: a tune
measured there, and a server killed mid-run, which stops the run without losing a record."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from shared_mcts.ledger import read_ledger
from shared_mcts.measure.measurer import RPCAddress

from .llm_servers import free_port

KEY = "shared-mcts-test"


def _start(args, log):
    # Own process group: the server forks a process per session, and killing the device means all of them.
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class Device:
    """An RPC tracker and one server registered with it under KEY."""

    def __init__(self, folder):
        self.folder = folder
        self.tracker_port = free_port()
        self.address = RPCAddress("127.0.0.1", self.tracker_port, KEY)
        self.tracker = _start(["tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", str(self.tracker_port),
                               "--port-end", str(self.tracker_port + 1)], open(folder / "tracker.log", "wb"))
        self.server = None
        self.start_server()

    def start_server(self):
        port = free_port()
        self.server_log = self.folder / f"server-{port}.log"
        self.server = _start(["tvm.exec.rpc_server", "--tracker", f"127.0.0.1:{self.tracker_port}", "--key", KEY,
                              "--host", "127.0.0.1", "--port", str(port), "--port-end", str(port + 1)],
                             open(self.server_log, "wb"))
        if not self.address.wait_registered(60):
            raise RuntimeError(f"RPC server did not register: {self.server_log.read_text()[-2000:]}")

    def sessions(self) -> int:
        return self.server_log.read_text().count("connected from")

    def close(self):
        for proc in (self.server, self.tracker):
            if proc is not None:
                _kill(proc)


@pytest.fixture
def device(tmp_path):
    dev = Device(tmp_path)
    yield dev
    dev.close()


def _measurements(run):
    return [e for e in read_ledger(run / "ledger.jsonl") if e["event"] == "measurement"]


def test_tune_measures_on_the_rpc_device(tmp_path, device, run_cli):
    run = tmp_path / "run"
    code, out, err = run_cli("tune", "llama-attention", "--trials", "4", "--models", "expert,mutate",
                             "--rpc", str(device.address), "--out", run, "--remeasure-repeat", "2")
    assert code == 0, err
    measured = _measurements(run)
    assert len(measured) == 4 and any(e["latency_s"] for e in measured)
    # untuned + 4 candidates + the final re-measurement, each in its own session on the server
    assert device.sessions() >= 6, device.server_log.read_text()[-2000:]
    start = read_ledger(run / "ledger.jsonl")[0]
    assert start["rpc"] == str(device.address)
    assert json.loads((run / "summary.json").read_text())["best_latency_s"] > 0


def test_an_address_without_a_device_is_refused_before_anything_runs(tmp_path, run_cli):
    code, _, err = run_cli("tune", "llama-attention", "--rpc", f"127.0.0.1:{free_port()}:nobody",
                           "--out", tmp_path / "run")
    assert code == 2 and "no RPC server with key 'nobody'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_killing_the_server_mid_run_loses_no_record_and_the_run_resumes(tmp_path, device):
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "shared_mcts", "tune", "llama-attention", "--trials", "10", "--models",
            "expert,mutate", "--router", "round-robin", "--rpc", str(device.address), "--rpc-wait", "2",
            "--run-timeout", "10", "--out", str(run), "--remeasure-repeat", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not ((run / "ledger.jsonl").exists() and len(_measurements(run)) >= 3) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    _kill(device.server)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    last = err.strip().splitlines()[-1]  # the lines before it are the live progress
    assert last.startswith("shared-mcts: stopped: RPC device") and "is gone" in last and f"--resume {run}" in last
    assert "Traceback" not in err
    before = _measurements(run)
    assert 3 <= len(before) < 10
    assert all(not (e["error"] or "").startswith("timeout") for e in before), "the lost device was blamed on a candidate"
    assert read_ledger(run / "ledger.jsonl")[-1]["event"] == "stopped"

    device.start_server()
    done = subprocess.run([sys.executable, "-m", "shared_mcts", "tune", "--resume", str(run), "--remeasure-repeat", "1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = _measurements(run)
    assert len(after) == 10 and len({e["key"] for e in after}) == 10
    assert [e["key"] for e in after[:len(before)]] == [e["key"] for e in before]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["timing"]["replayed_measurements"] == len(before)
