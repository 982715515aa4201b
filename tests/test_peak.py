"""The measured-peak FMA kernel: what it computes, that it is made of FMAs, and its report.
No assertion on speed: only that the measurement exists and says how it was made."""

import numpy as np
import pytest

from shared_mcts import peak


@pytest.mark.parametrize("mcpu, register", [("skylake-avx512", "zmm"), ("x86-64-v3", "ymm")])
def test_kernel_is_vector_fmas(mcpu, register):
    import tvm

    from shared_mcts.hardware import simd_lanes_fp32, target_features

    target = {"kind": "llvm", "mcpu": mcpu, "num-cores": 2}
    lanes = simd_lanes_fp32(target_features(target))
    exe = tvm.compile(tvm.IRModule({"main": peak.fma_kernel(2, lanes, iterations=1000)}), target=tvm.target.Target(target))
    asm = exe.mod.inspect_source("asm")
    counts = peak.fma_instructions(asm)
    assert set(counts) == {register} and counts[register] >= peak.ACCUMULATORS, counts
    # Register-resident: the hot loop touches no memory at all (a spilled accumulator would).
    body = _hot_loop(asm)
    assert sum("vfmadd" in line for line in body) >= peak.ACCUMULATORS
    assert not [line for line in body if "(" in line], body


def _hot_loop(asm: str) -> list[str]:
    """The instructions from the label before the first FMA to the jump back to that label."""
    lines = asm.splitlines()
    first = next(n for n, line in enumerate(lines) if "vfmadd" in line)
    start = max(n for n in range(first) if lines[n].rstrip().endswith(":") and not lines[n].startswith("\t"))
    label = lines[start].strip().rstrip(":")
    end = next(n for n in range(first, len(lines)) if lines[n].split()[-1:] == [label])
    return [line for line in lines[start + 1:end + 1] if not line.strip().startswith(".")]


def test_fma_instruction_count_reads_att_syntax():
    asm = "\tvfmadd213ps\t%zmm13, %zmm12, %zmm0\n\tvfmadd231ps\t(%rax){1to16}, %zmm1, %zmm2\n" \
          "\tvfmadd213ps\t%ymm1, %ymm2, %ymm3\n\tvaddps\t%zmm1, %zmm2, %zmm3\n\tvfmadd213ss\t%xmm1, %xmm2, %xmm3\n"
    assert peak.fma_instructions(asm) == {"zmm": 2, "ymm": 1}


def test_kernel_computes_the_expected_result(target):
    import tvm

    from shared_mcts.hardware import simd_lanes_fp32, target_features

    threads, lanes, iterations = 3, simd_lanes_fp32(target_features(target)), 777
    module = tvm.compile(tvm.IRModule({"main": peak.fma_kernel(threads, lanes, iterations=iterations)}),
                         target=tvm.target.Target(target)).jit()
    a, x, y = peak.kernel_inputs(threads, lanes, seed=1)
    dev = tvm.cpu()
    out = tvm.runtime.tensor(np.zeros_like(a), dev)
    module["main"](*[tvm.runtime.tensor(v, dev) for v in (a, x, y)], out)
    np.testing.assert_array_equal(out.numpy(), a + np.float32(iterations * peak.STEP))
    assert peak.kernel_flops(threads, lanes, iterations=iterations) == threads * peak.ACCUMULATORS * lanes * iterations * 2


def test_measured_peak_is_positive_says_how_and_is_cached(target):
    from shared_mcts.hardware import simd_lanes_fp32, target_features

    lanes = simd_lanes_fp32(target_features(target))
    measured = peak.measure_peak(target, lanes)
    assert measured.gflops > 0
    assert "FMA kernel" in measured.how and f"{target['num-cores']} threads" in measured.how and "vfmadd" in measured.how
    assert peak.measure_peak(dict(target), lanes) is measured  # once per process and target


def test_non_cpu_target_is_not_measured():
    measured = peak.measure_peak({"kind": "cuda"}, 1)
    assert measured.gflops is None and measured.how.startswith("not measured")
