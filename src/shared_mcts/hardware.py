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
    """What the tuner needs to know about the machine it measures on."""

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

    def peak_gflops(self) -> float:
        return self.cores * self.simd_lanes_fp32 * self.fma_units * 2 * self.clock_ghz

    def peak_formula(self) -> str:
        return (
            f"{self.cores} cores x {self.simd_lanes_fp32} fp32 lanes x {self.fma_units} FMA units "
            f"x 2 flop/FMA x {self.clock_ghz:.2f} GHz = {self.peak_gflops():.0f} GFLOP/s "
            f"(clock: {self.clock_source}; FMA units: {self.fma_units_source})"
        )

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


def _llvm_cpu_features(target_dict: dict) -> set[str]:
    from tvm.target import Target, codegen

    return {str(f) for f in codegen.llvm_get_cpu_features(Target(target_dict))}


def simd_lanes_fp32(features: set[str]) -> int:
    if "avx512f" in features:
        return 16
    if "avx" in features or "avx2" in features:
        return 8
    return 4


def fma_units(features: set[str]) -> tuple[int, str]:
    """Vector FMA pipes per core. Not readable from the OS: Xeons with AVX-512 have two
    (one on a few Silver/Bronze parts), AVX2 cores two, older cores one. Override with
    SHARED_MCTS_FMA_UNITS when you know better."""
    env = os.environ.get("SHARED_MCTS_FMA_UNITS")
    if env:
        return int(env), "SHARED_MCTS_FMA_UNITS"
    if "fma" in features:
        return 2, "assumed 2 for an FMA-capable x86 core"
    return 1, "assumed 1 (no FMA)"


def detect_llvm_cpu() -> str:
    """LLVM's name for this CPU. Never silently generic: if LLVM cannot name it we pick the
    best x86-64 level the CPU flags allow and warn."""
    from tvm.target import codegen

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
    from tvm.target import codegen

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
                raise UserError(f"--target is not valid JSON: {e.msg} at column {e.colno}") from None
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
            import tvm

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
    from tvm.target import Target

    try:
        Target(target)
    except Exception as e:  # TVM raises assorted error types for bad dicts
        raise UserError(f"TVM rejects the target {json.dumps(target)}: {str(e).splitlines()[0]}") from None
    return target


def host_info(target: dict | None = None) -> HostInfo:
    """Facts about the CPU the target describes (features from LLVM for the target's mcpu,
    clock and caches from this host)."""
    target = target or detect_target()
    cpuinfo = _cpuinfo()
    features = _llvm_cpu_features(target) if target.get("kind") == "llvm" else set()
    clock, clock_source = detect_clock_ghz(cpuinfo)
    fma, fma_source = fma_units(features)
    caches = _cache_sizes()
    return HostInfo(
        model_name=_model_name(cpuinfo),
        llvm_cpu=target.get("mcpu", "generic"),
        cores=int(target.get("num-cores", usable_cores())),
        simd_lanes_fp32=simd_lanes_fp32(features),
        fma_units=fma,
        fma_units_source=fma_source,
        clock_ghz=clock,
        clock_source=clock_source,
        l1d_bytes=caches.get(1),
        l2_bytes=caches.get(2),
        l3_bytes=caches.get(3),
    )
