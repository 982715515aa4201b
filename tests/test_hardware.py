import json

import pytest

from shared_mcts import hardware
from shared_mcts.errors import UserError


def test_detected_target_names_a_real_cpu(target):
    from tvm.target import codegen

    assert target["kind"] == "llvm"
    assert target["num-cores"] == hardware.usable_cores()
    assert target["mcpu"] not in ("generic", "x86-64")
    assert codegen.llvm_is_valid_cpu(target["mcpu"], "x86_64-unknown-linux-gnu")


def test_resolve_target_accepts_json_and_presets():
    assert hardware.resolve_target('{"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 1}') == {
        "kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 1}
    assert hardware.resolve_target("avx2")["mcpu"] == "x86-64-v3"
    assert hardware.resolve_target('{"kind": "llvm", "mcpu": "cascadelake"}')["num-cores"] == hardware.usable_cores()


@pytest.mark.parametrize("spec, words", [
    ("{not json", "not valid JSON"),
    ("pentium-9000", "unknown target preset"),
    ('{"kind": "llvm", "mcpu": "bogus-cpu"}', "not a CPU name LLVM knows"),
    ('{"mcpu": "cascadelake"}', '"kind"'),
    ('{"kind": "llvm", "mcpu": "cascadelake", "num-cores": 0}', "num-cores"),
    ("[1, 2]", "unknown target preset"),
])
def test_bad_targets_are_user_errors(spec, words):
    with pytest.raises(UserError, match=words):
        hardware.resolve_target(spec)


def test_missing_mcpu_warns_instead_of_silently_going_generic():
    with pytest.warns(UserWarning, match="generic"):
        hardware.resolve_target('{"kind": "llvm", "num-cores": 1}')


def test_clock_sources(monkeypatch):
    ghz, source = hardware.detect_clock_ghz("model name\t: Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz\ncpu MHz\t: 1000.0\n")
    if "cpufreq" not in source:  # on a host exposing cpufreq, that wins
        assert ghz == 2.4 and "nominal" in source
    ghz, source = hardware.detect_clock_ghz("model name\t: AMD EPYC\ncpu MHz\t\t: 2994.5\n")
    if "cpufreq" not in source:
        assert ghz == pytest.approx(2.9945) and "cpu MHz" in source


def test_peak_is_the_product_of_its_factors(target):
    info = hardware.host_info(target)
    expected = info.cores * info.simd_lanes_fp32 * info.fma_units * 2 * info.clock_ghz
    assert info.peak_gflops() == pytest.approx(expected)
    assert info.simd_lanes_fp32 in (4, 8, 16)
    assert f"{info.peak_gflops():.0f} GFLOP/s" in info.peak_formula()


def test_simd_lanes_from_features():
    assert hardware.simd_lanes_fp32({"avx512f", "avx2"}) == 16
    assert hardware.simd_lanes_fp32({"avx2", "avx"}) == 8
    assert hardware.simd_lanes_fp32({"sse4.2"}) == 4


def test_fma_override(monkeypatch):
    monkeypatch.setenv("SHARED_MCTS_FMA_UNITS", "1")
    assert hardware.fma_units({"fma"}, 16, "znver5") == (1, "SHARED_MCTS_FMA_UNITS")
    monkeypatch.setenv("SHARED_MCTS_FMA_UNITS", "two")
    with pytest.raises(UserError, match="SHARED_MCTS_FMA_UNITS must be a positive integer"):
        hardware.fma_units({"fma"}, 16)


@pytest.mark.parametrize("cpu, model, lanes, units, words", [
    ("znver4", "AMD EPYC 9R14", 16, 1, "two 256-bit halves"),  # double-pumped 512-bit FMA
    ("znver4", "AMD EPYC 9R14", 8, 2, "znver4"),
    ("znver5", "AMD EPYC", 16, 2, "two full 512-bit"),
    ("znver1", "AMD EPYC 7551", 8, 1, "128-bit halves"),
    ("icelake-client", "Intel(R) Core(TM) i7-1065G7", 16, 1, "one 512-bit FMA unit"),
    ("cascadelake", "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz", 16, 1, "Silver 4214"),
    ("skylake-avx512", "Intel(R) Xeon(R) Gold 5120 CPU @ 2.20GHz", 16, 1, "Gold 5120"),
    ("skylake-avx512", "Intel(R) Xeon(R) Gold 5122 CPU @ 3.60GHz", 16, 2, "assumed 2"),
    ("cascadelake", "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 16, 2, "assumed 2"),
    ("cascadelake", "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz", 8, 2, "assumed 2"),  # two 256-bit units
    ("sapphirerapids", "Intel(R) Xeon(R) Platinum 8480+", 16, 2, "assumed 2"),
])
def test_fma_units_per_cpu(monkeypatch, cpu, model, lanes, units, words):
    monkeypatch.delenv("SHARED_MCTS_FMA_UNITS", raising=False)
    got, why = hardware.fma_units({"fma", "avx2"}, lanes, cpu, model)
    assert (got, words in why) == (units, True), why


def test_no_fma_means_one_unit(monkeypatch):
    monkeypatch.delenv("SHARED_MCTS_FMA_UNITS", raising=False)
    assert hardware.fma_units({"sse4.2"}, 4, "znver5")[0] == 1


def test_zen4_peak_formula_says_its_assumption(monkeypatch):
    monkeypatch.delenv("SHARED_MCTS_FMA_UNITS", raising=False)
    monkeypatch.setattr(hardware, "host_llvm_cpu", lambda: "znver4")
    info = hardware.host_info({"kind": "llvm", "mcpu": "znver4", "num-cores": 2})
    assert (info.simd_lanes_fp32, info.fma_units) == (16, 1)
    assert info.peak_gflops() == pytest.approx(2 * 16 * 1 * 2 * info.clock_ghz)
    assert "1 FMA units" in info.peak_formula() and "two 256-bit halves" in info.peak_formula()
    assert info.peak_measured_gflops is None and info.reference_peak() == (info.peak_gflops(), "formula peak")


def test_reference_peak_prefers_the_measured_one(target):
    info = hardware.host_info(target, measure_peak=True)
    assert info.peak_measured_gflops > 0 and "FMA kernel" in info.peak_measured_how
    assert info.reference_peak() == (info.peak_measured_gflops, "measured peak")
    d = info.as_dict()
    assert d["peak_measured_gflops"] == info.peak_measured_gflops and d["peak_measured_how"] == info.peak_measured_how
    assert d["peak_gflops"] == info.peak_gflops()  # the formula's value stays under its old name


def test_target_prints_json_that_target_accepts(run_cli, target):
    code, out, _ = run_cli("target")
    assert code == 0 and "peak measured:" in out
    (line,) = [line for line in out.splitlines() if line.startswith("target: ")]
    printed = json.loads(line[len("target: "):])
    assert printed == target
    code, again, _ = run_cli("target", "--target", line[len("target: "):])
    assert code == 0 and again.splitlines()[0] == line
    assert hardware.resolve_target(line[len("target: "):]) == target
