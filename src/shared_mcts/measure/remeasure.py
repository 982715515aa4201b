"""Time a final schedule again in a fresh process, with more repeats.

A fresh process avoids caches, allocator state and thermal history left by the search.
Run as `python -m shared_mcts.measure.remeasure REQUEST.json RESULT.json`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import last_line
from ..hardware import simd_lanes_fp32, target_features
from ..peak import FmaProbe


@dataclass
class Remeasurement:
    median_s: float
    min_s: float
    max_s: float
    iqr_s: float
    samples_s: list[float]
    # GFLOP/s of the FMA peak kernel right before and right after the samples, in the same
    # process: a machine that slowed down (a shared VM) shows here, a slow schedule does not.
    machine_gflops: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(samples: list[float], machine_gflops: list[float] | None = None) -> Remeasurement:
    ordered = sorted(samples)
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4)
    else:
        q1, q3 = ordered[0], ordered[-1]
    return Remeasurement(statistics.median(ordered), ordered[0], ordered[-1], q3 - q1, ordered, list(machine_gflops or []))


def packs_weights(mod) -> bool:
    """Whether the schedule packs layout-free (weight) parameters in a preprocessing block."""
    return "meta_schedule.layout_rewrite_preproc" in mod.script()


def remeasure(mod, target: dict, repeat: int = 20, min_repeat_ms: int = 100, timeout_s: float = 600,
              prepacked: bool = True) -> Remeasurement:
    """Compile and time `mod` in a child process; raises RuntimeError if that fails.

    prepacked: time the kernel on weights packed beforehand, as a deployment that packs its
    constants once does (MetaSchedule's builder does the same: the packing block is removed);
    False times the packing inside every call."""
    import tvm  # TVM: loaded on use (seconds to import)

    with tempfile.TemporaryDirectory(prefix="shared-mcts-remeasure-") as tmp:
        request = Path(tmp, "request.json")
        result = Path(tmp, "result.json")
        request.write_text(
            json.dumps({"mod": tvm.ir.save_json(mod), "target": target, "repeat": repeat, "min_repeat_ms": min_repeat_ms,
                        "prepacked": prepacked})
        )
        proc = subprocess.run(
            [sys.executable, "-m", "shared_mcts.measure.remeasure", str(request), str(result)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=dict(os.environ),
        )
        if proc.returncode != 0 or not result.exists():
            why = last_line(proc.stderr or proc.stdout, empty="no output")
            raise RuntimeError(f"remeasure failed (exit {proc.returncode}): {why}")
        answer = json.loads(result.read_text())
        return summarize(answer["samples_s"], answer["machine_gflops"])


def _child(request_path: str, result_path: str) -> None:
    import tvm  # TVM: loaded on use (seconds to import)
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo  # TVM: loaded on use (seconds to import)

    request = json.loads(Path(request_path).read_text())
    mod = tvm.ir.load_json(request["mod"])
    prepacked = request.get("prepacked", True)
    if prepacked:
        from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock  # TVM: loaded on use (seconds to import)

        mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    dev = tvm.cpu()
    rng = np.random.default_rng(0)
    args = [
        tvm.runtime.tensor(rng.standard_normal([int(d) for d in info.shape]).astype(str(info.dtype)), dev)
        for info in ArgInfo.from_entry_func(mod, remove_preproc=False)  # already removed when prepacked
    ]
    module = tvm.compile(mod, target=tvm.target.Target(request["target"])).jit()
    module["main"](*args)  # warm-up: first call pays page faults and lazy init
    timer = module.time_evaluator("main", dev, number=1, repeat=request["repeat"], min_repeat_ms=request["min_repeat_ms"])
    probe = _machine_probe(request["target"])
    machine_gflops = [probe.gflops()] if probe else []
    samples = [float(s) for s in timer(*args).results]
    machine_gflops += [probe.gflops()] if probe else []
    Path(result_path).write_text(json.dumps({"samples_s": samples, "machine_gflops": machine_gflops}))


def _machine_probe(target: dict):
    """The peak FMA kernel for this CPU target; None where there is none (non-llvm targets)."""
    return FmaProbe(target, simd_lanes_fp32(target_features(target))) if target.get("kind") == "llvm" else None


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
