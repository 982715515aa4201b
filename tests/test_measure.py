import os

import pytest

from shared_mcts.measure import MeasureConfig, Measurer, check_correctness, remeasure
from shared_mcts.workloads import get_workload

from .conftest import DATA


def _wrong_module(workload):
    """A legitimately scheduled module with one deliberate bug: the reduction starts from 1.0."""
    import tvm
    from tvm.s_tir import Schedule
    from tvm.script import from_source

    sch = Schedule(workload.mod())
    block = sch.get_sblock("C", func_name="main")
    i, j, k = sch.get_loops(block)
    sch.split(i, factors=[None, 8])
    text = sch.mod.script()
    assert "T.float32(0.0)" in text
    wrong = from_source(text.replace("T.float32(0.0)", "T.float32(1.0)", 1))
    return wrong if isinstance(wrong, tvm.IRModule) else tvm.IRModule({"main": wrong})


def test_correctness_check_catches_a_wrong_schedule(target):
    workload = get_workload(f"{DATA / 'small_matmul.py'}:matmul")
    workload.reference = lambda args: [args[0] @ args[1]]  # numpy reference for this test
    ok = check_correctness(workload, workload.mod(), target)
    assert ok.ok
    bad = check_correctness(workload, _wrong_module(workload), target)
    assert not bad.ok
    assert bad.max_abs_error > bad.tolerance
    assert "exceeds tolerance" in bad.message


def test_measure_returns_latencies_and_failures_as_results(target):
    import tvm
    from tvm.script import from_source

    workload = get_workload(f"{DATA / 'small_matmul.py'}:matmul")
    # Builds fine, but its library needs a symbol that does not exist: the run must fail.
    unresolved = from_source(
        workload.mod().script().replace("T.float32(0.0)", 'T.call_extern("float32", "shared_mcts_no_such_symbol")', 1)
    )
    unresolved = unresolved if isinstance(unresolved, tvm.IRModule) else tvm.IRModule({"main": unresolved})
    measurer = Measurer(target, MeasureConfig(repeat=2, min_repeat_ms=1))
    good, bad = measurer.measure_mods([workload.mod(), unresolved])
    assert good.ok and good.latency_s > 0 and len(good.run_secs) == 2
    assert not bad.ok and bad.latency_s is None and bad.error_kind in ("build", "run", "crash") and bad.error
    assert measurer.clock.build_s > 0 and measurer.clock.run_s > 0


def test_a_run_past_its_timeout_is_a_timeout_result(target):
    workload = get_workload("flux-conv")  # untuned: ~1 s per run on 2 cores
    measurer = Measurer(target, MeasureConfig(repeat=3, min_repeat_ms=0, run_timeout_s=0.3))
    (result,) = measurer.measure_mods([workload.mod()])
    assert not result.ok and result.error_kind == "timeout"


def test_remeasure_in_a_fresh_process(target):
    workload = get_workload("llama-attention")
    again = remeasure(workload.mod(), target, repeat=5, min_repeat_ms=10)
    assert len(again.samples_s) == 5
    assert again.min_s <= again.median_s <= again.max_s
    assert again.iqr_s >= 0
    assert len(again.machine_gflops) == 2 and min(again.machine_gflops) > 0  # the FMA probe before and after


def test_remeasure_failure_is_reported(target):
    import tvm
    from tvm.script import from_source

    workload = get_workload(f"{DATA / 'small_matmul.py'}:matmul")
    broken = from_source(workload.mod().script().replace("T.float32(0.0)", 'T.call_extern("float32", "shared_mcts_missing")', 1))
    broken = broken if isinstance(broken, tvm.IRModule) else tvm.IRModule({"main": broken})
    with pytest.raises(RuntimeError, match="remeasure failed"):
        remeasure(broken, target, repeat=2)


def test_tvm_runs_kernels_on_the_targets_cores(monkeypatch):
    """TVM's default on x86 is half the CPUs (one core of two on these VMs): the measurer asks
    for the target's cores unless the user chose a thread count."""
    from shared_mcts.threads import VARIABLE, threads_in_effect, use_target_cores

    monkeypatch.delenv(VARIABLE, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads_in_effect() is None
    assert use_target_cores({"kind": "llvm", "num-cores": 3}) == 3 and os.environ[VARIABLE] == "3"
    monkeypatch.setenv(VARIABLE, "1")
    assert use_target_cores({"kind": "llvm", "num-cores": 3}) == 1 and os.environ[VARIABLE] == "1"
