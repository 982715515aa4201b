"""Host CPU detection, the TVM target dict, and the fp32 peak FLOP/s used for "% of peak".

Kept free of MetaSchedule imports: only `tvm.target` is needed, and only inside functions.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UserError
from .peak import measure_peak as run_peak_kernel

# Presets a user may name instead of writing a JSON dict; "host" means "detect this machine".
PRESET_MCPU = {
    "host": None,
    "avx512": "skylake-avx512",
    "skylake-avx512": "skylake-avx512",
    "cascadelake": "cascadelake",
    "sapphirerapids": "sapphirerapids",
    "avx2": "x86-64-v3",
    "x86-64-v3": "x86-64-v3",
    "x86-64-v4": "x86-64-v4",
    "generic": "x86-64",
}


@dataclass(frozen=True)
class HostInfo:
    """What the tuner needs to know about the machine it measures on. `peak_gflops()` is the
    formula's value; `peak_measured_gflops` the FMA kernel's (shared_mcts.peak), None when it
    was not measured (`peak_measured_how` then says why, or is None when nobody asked)."""

    model_name: str
    llvm_cpu: str
    cores: int
    simd_lanes_fp32: int
    fma_units: int
    fma_units_source: str
    clock_ghz: float
    clock_source: str
    l1d_bytes: int | None
    l2_bytes: int | None
    l3_bytes: int | None
    peak_measured_gflops: float | None = None
    peak_measured_how: str | None = None

    def peak_gflops(self) -> float:
        return self.cores * self.simd_lanes_fp32 * self.fma_units * 2 * self.clock_ghz

    def peak_formula(self) -> str:
        return (
            f"{self.cores} cores x {self.simd_lanes_fp32} fp32 lanes x {self.fma_units} FMA units "
            f"x 2 flop/FMA x {self.clock_ghz:.2f} GHz = {self.peak_gflops():.0f} GFLOP/s "
            f"(clock: {self.clock_source}; FMA units: {self.fma_units_source})"
        )

    def reference_peak(self) -> tuple[float, str]:
        """The peak "% of peak" divides by, and its name: the measured one when there is one."""
        if self.peak_measured_gflops is not None:
            return self.peak_measured_gflops, "measured peak"
        return self.peak_gflops(), "formula peak"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["peak_gflops"] = self.peak_gflops()
        return d


def usable_cores() -> int:
    """Cores this process may run on (affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _model_name(cpuinfo: str) -> str:
    m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    return m.group(1).strip() if m else "unknown CPU"


def detect_clock_ghz(cpuinfo: str | None = None) -> tuple[float, str]:
    """Clock used for the peak: cpufreq's max if the kernel exposes it, else the nominal
    clock in the model name, else the current 'cpu MHz'. Returns (GHz, how it was found)."""
    cpuinfo = _cpuinfo() if cpuinfo is None else cpuinfo
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(max_freq.read_text()) / 1e6, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    m = re.search(r"@\s*([\d.]+)\s*GHz", _model_name(cpuinfo))
    if m:
        return float(m.group(1)), "nominal clock in /proc/cpuinfo model name (turbo not counted)"
    m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
    if m:
        return float(m.group(1)) / 1000, "current 'cpu MHz' in /proc/cpuinfo"
    warnings.warn("could not find the CPU clock; assuming 2.0 GHz for the peak", stacklevel=2)
    return 2.0, "unknown, assumed 2.0 GHz"


def _cache_sizes() -> dict[int, int]:
    """Data/unified cache size per level from sysfs, in bytes."""
    sizes: dict[int, int] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        unit = {"K": 1024, "M": 1024**2}.get(text[-1], 1)
        sizes[level] = int(text.rstrip("KM")) * unit
    return sizes


def target_features(target_dict: dict) -> set[str]:
    from tvm.target import Target, codegen  # TVM: loaded on use (seconds to import)

    return {str(f) for f in codegen.llvm_get_cpu_features(Target(target_dict))}


def simd_lanes_fp32(features: set[str]) -> int:
    if "avx512f" in features:
        return 16
    if "avx" in features or "avx2" in features:
        return 8
    return 4


# Vector FMA units per core where they differ from the default of two full-width units, by
# LLVM's CPU name and vector width (fp32 lanes), with the reason shown in the peak formula.
# Zen 4 and client Ice Lake-era cores have AVX-512 but one 512-bit FMA per cycle, two at 256
# bits: the same flops per cycle either way.
_FMA_UNITS_BY_CPU: dict[str, tuple[dict[int, int], str]] = {
    "znver1": ({8: 1}, "Zen 1 executes a 256-bit FMA as two 128-bit halves"),
    "znver4": ({16: 1, 8: 2}, "Zen 4 executes a 512-bit FMA as two 256-bit halves, one per cycle"),
    "znver5": ({16: 2, 8: 2}, "Zen 5 has two full 512-bit FMA pipes"),
    **{name: ({16: 1, 8: 2}, f"{name} cores have one 512-bit FMA unit (ports 0+1 fused)")
       for name in ("cannonlake", "icelake-client", "tigerlake", "rocketlake")},
}
# Skylake/Cascade Lake Xeons with one 512-bit FMA unit: Bronze, Silver, and Gold 51xx/52xx but
# the 5122 and 5222 (Intel ARK, "# of AVX-512 FMA Units").
_ONE_AVX512_FMA_XEON = re.compile(r"Xeon.*\b(Bronze|Silver|Gold 5(?!122|222)[12]\d\d)\b")


def fma_units(features: set[str], lanes: int, cpu_name: str = "", model_name: str = "") -> tuple[int, str]:
    """Vector FMA units per core at a vector width of `lanes` fp32 lanes. Not readable from the
    OS: known parts by LLVM's CPU name (and Xeon model name), else 2 for FMA-capable cores.
    SHARED_MCTS_FMA_UNITS overrides."""
    env = os.environ.get("SHARED_MCTS_FMA_UNITS")
    if env:
        if not env.strip().isdigit() or int(env) < 1:
            raise UserError(f"SHARED_MCTS_FMA_UNITS must be a positive integer, got {env!r}")
        return int(env), "SHARED_MCTS_FMA_UNITS"
    if "fma" not in features:
        return 1, "assumed 1 (no FMA)"
    known = _FMA_UNITS_BY_CPU.get(cpu_name)
    if known and lanes in known[0]:
        units, why = known[0][lanes], known[1]
        return units, f"{units} at {lanes * 32} bits on {cpu_name}: {why}"
    if lanes == 16 and cpu_name in ("skylake-avx512", "cascadelake") and _ONE_AVX512_FMA_XEON.search(model_name):
        return 1, f"1 at 512 bits: {model_name} has one AVX-512 FMA unit"
    return 2, "assumed 2 for an FMA-capable x86 core (some parts have one: set SHARED_MCTS_FMA_UNITS)"


def host_llvm_cpu() -> str:
    """LLVM's name for the silicon this process runs on (may be generic)."""
    from tvm.target import codegen  # TVM: loaded on use (seconds to import)

    return str(codegen.llvm_get_system_cpu())


def detect_llvm_cpu() -> str:
    """LLVM's name for this CPU. Never silently generic: if LLVM cannot name it we pick the
    best x86-64 level the CPU flags allow and warn."""
    from tvm.target import codegen  # TVM: loaded on use (seconds to import)

    name = str(codegen.llvm_get_system_cpu())
    if name not in ("", "generic", "x86-64") and codegen.llvm_is_valid_cpu(name, "x86_64-unknown-linux-gnu"):
        return name
    flags = set(re.findall(r"\S+", (re.search(r"^flags\s*:(.*)$", _cpuinfo(), re.M) or [None, ""])[1]))
    level = "x86-64-v4" if "avx512f" in flags else "x86-64-v3" if "avx2" in flags else "x86-64-v2"
    warnings.warn(f"LLVM could not name this CPU ({name!r}); using mcpu={level} from its flags", stacklevel=2)
    return level


def detect_target(num_cores: int | None = None) -> dict:
    return {"kind": "llvm", "mcpu": detect_llvm_cpu(), "num-cores": num_cores or usable_cores()}


def _validate_mcpu(mcpu: str) -> None:
    from tvm.target import codegen  # TVM: loaded on use (seconds to import)

    if not isinstance(mcpu, str) or not mcpu:
        raise UserError('target "mcpu" must be a CPU name such as "cascadelake"')
    if codegen.llvm_is_valid_cpu(mcpu, "x86_64-unknown-linux-gnu"):
        return
    for isa, triple in (("aarch64", "aarch64-unknown-linux-gnu"), ("32-bit ARM", "armv7a-unknown-linux-gnueabihf"),
                        ("RISC-V", "riscv64-unknown-linux-gnu"), ("POWER", "powerpc64le-unknown-linux-gnu")):
        if codegen.llvm_is_valid_cpu(mcpu, triple):
            raise UserError(f"target mcpu {mcpu!r} is an {isa} CPU: only x86-64 CPU targets are supported "
                            "(e.g. 'cascadelake', 'skylake-avx512', 'x86-64-v3')")
    raise UserError(f"target mcpu {mcpu!r} is not a CPU name LLVM knows (try 'cascadelake', 'skylake-avx512', 'x86-64-v3')")


def resolve_target(spec: str | dict | None, remote: bool = False) -> dict:
    """Turn --target (None, a preset name, or a JSON dict) into a validated TVM target dict.
    Only x86-64 CPU targets are supported. remote: candidates run on another machine (--rpc),
    so "num-cores" may exceed this machine's cores."""
    if spec is None or spec == "host":
        return detect_target()
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as e:
                raise UserError(f"is not valid JSON: {e.msg} at column {e.colno}", argument="target") from None
        elif text in PRESET_MCPU:
            return {"kind": "llvm", "mcpu": PRESET_MCPU[text], "num-cores": usable_cores()}
        else:
            raise UserError(f"unknown target preset {text!r}; use one of {', '.join(PRESET_MCPU)} or a JSON dict")
    if not isinstance(spec, dict) or "kind" not in spec:
        raise UserError('--target JSON must be an object with a "kind", e.g. {"kind": "llvm", "mcpu": "skylake-avx512"}')
    target = dict(spec)
    if target["kind"] != "llvm":
        device = ""
        if target["kind"] == "cuda":
            import tvm  # TVM: loaded on use (seconds to import)

            device = (" (this machine has a CUDA device, but tuning for it is not supported)" if tvm.cuda().exist
                      else " (and this machine has no CUDA device)")
        raise UserError(f'only x86-64 CPU targets ("kind": "llvm") are supported, not {json.dumps(target["kind"])}'
                        + device)
    triple = target.get("mtriple")
    if triple is not None and not str(triple).startswith("x86_64"):
        raise UserError(f"target mtriple {triple!r}: only x86-64 CPU targets are supported")
    target.setdefault("num-cores", usable_cores())
    cores = target["num-cores"]
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise UserError('target "num-cores" must be a positive integer')
    if cores > usable_cores() and not remote:
        raise UserError(f'target "num-cores" {cores} is more than the {usable_cores()} cores this process may use '
                        "(measuring on another machine needs --rpc)")
    if "mcpu" not in target:
        warnings.warn("target has no mcpu: LLVM will emit generic x86-64 (SSE2) code", stacklevel=2)
    else:
        _validate_mcpu(target["mcpu"])
    from tvm.target import Target  # TVM: loaded on use (seconds to import)

    try:
        Target(target)
    except Exception as e:  # TVM raises assorted error types for bad dicts
        raise UserError(f"TVM rejects the target {json.dumps(target)}: {str(e).splitlines()[0]}") from None
    return target


def host_info(target: dict | None = None, measure_peak: bool = False) -> HostInfo:
    """Facts about the CPU the target describes (features from LLVM for the target's mcpu;
    clock, caches and FMA units from this host, where the code runs). `measure_peak` also
    times shared_mcts.peak's FMA kernel (once per process and target)."""
    target = target or detect_target()
    cpuinfo = _cpuinfo()
    model_name = _model_name(cpuinfo)
    features = target_features(target) if target.get("kind") == "llvm" else set()
    lanes = simd_lanes_fp32(features)
    clock, clock_source = detect_clock_ghz(cpuinfo)
    fma, fma_source = fma_units(features, lanes, host_llvm_cpu(), model_name)
    caches = _cache_sizes()
    measured = None
    if measure_peak:
        measured = run_peak_kernel(target, lanes)
    return HostInfo(
        model_name=model_name,
        llvm_cpu=target.get("mcpu", "generic"),
        cores=int(target.get("num-cores", usable_cores())),
        simd_lanes_fp32=lanes,
        fma_units=fma,
        fma_units_source=fma_source,
        clock_ghz=clock,
        clock_source=clock_source,
        l1d_bytes=caches.get(1),
        l2_bytes=caches.get(2),
        l3_bytes=caches.get(3),
        peak_measured_gflops=measured.gflops if measured else None,
        peak_measured_how=measured.how if measured else None,
    )
