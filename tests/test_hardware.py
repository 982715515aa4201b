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
    assert hardware.fma_units({"fma"}) == (1, "SHARED_MCTS_FMA_UNITS")
