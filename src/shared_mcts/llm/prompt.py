"""The prompt an LLM proposer sees, and the JSON schema its answer must match. Pure: knobs
come in as `Knob`s, the schedule as TVMScript text.

What goes in: the workload (operator, shapes, dtype), the hardware, every knob with its
allowed values and constraints, a trimmed TVMScript of the current schedule, and the measured
history along the path (which edits helped or hurt, by how much). No cost-model score is ever
shown: an untrained model's scores are noise, and a trained one's are not measurements.
"""

from __future__ import annotations

import json
import re

from ..space.knobs import CATEGORICAL, COMPUTE_LOCATION, SPACE, TILE, Knob

SYSTEM = ("You tune TVM tensor programs for a CPU. You change schedule knobs to make the program faster. "
          "Answer with JSON only, matching the schema you are given.")


def trim_script(script: str, limit: int = 3000) -> str:
    """The loop structure without comments, read/write annotations and blank lines."""
    keep = [line.rstrip() for line in script.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and not re.match(r"\s*T\.(reads|writes)\(", line)]
    text = "\n".join(keep)
    return text if len(text) <= limit else text[:limit] + "\n... (truncated)"


def _value(v):
    return list(v) if isinstance(v, tuple) else v


def knob_schema(knob: Knob) -> dict:
    if knob.kind == TILE:
        return {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": knob.parts, "maxItems": knob.parts}
    if knob.kind in (CATEGORICAL, SPACE):
        return {"enum": list(knob.choices)}
    if knob.kind == COMPUTE_LOCATION:
        return {"type": "integer", "minimum": -2}
    return {}


def answer_schema(knobs: dict[str, Knob], k: int, next_models: list[str] | None = None) -> dict:
    """JSON schema of an answer: 1..k edits, each a set of knob changes with a one-line reason;
    optionally the model that should act next (COLT-style joint action)."""
    edit = {
        "type": "object",
        "properties": {
            "changes": {"type": "object", "properties": {n: knob_schema(kn) for n, kn in knobs.items()},
                        "additionalProperties": False, "minProperties": 1},
            "rationale": {"type": "string", "maxLength": 200},
        },
        "required": ["changes", "rationale"],
        "additionalProperties": False,
    }
    schema = {"type": "object", "properties": {"edits": {"type": "array", "items": edit, "minItems": 1, "maxItems": k}},
              "required": ["edits"], "additionalProperties": False}
    if next_models:
        schema["properties"]["next_model"] = {"enum": list(next_models)}
    return schema


def _latency(seconds) -> str:
    return "failed" if seconds is None else f"{seconds * 1e3:.4g} ms"


def history_lines(history: list[dict]) -> list[str]:
    """One line per step of the path from the first sample to this node, with the measured effect."""
    lines, previous = [], None
    for step in history:
        latency = step.get("latency_s")
        if previous is None or not step.get("edit"):
            lines.append(f"- start ({step.get('proposer')}): {_latency(latency)}")
        else:
            effect = ""
            if latency is not None and previous:
                change = previous / latency
                effect = f" ({'helped' if change > 1 else 'hurt'}: x{change:.2f})"
            lines.append(f"- {step.get('proposer')} changed {json.dumps(step['edit'])}: {_latency(latency)}{effect}")
        previous = latency if latency is not None else previous
    return lines


def build_messages(workload: dict, hardware: dict, knobs: dict[str, Knob], script: str, history: list[dict],
                   k: int, siblings: list[dict] | None = None) -> list[dict]:
    """Chat messages for one proposal call."""
    hw = (f"{hardware.get('model_name', 'CPU')}, LLVM cpu {hardware.get('llvm_cpu')}, {hardware.get('cores')} cores, "
          f"{hardware.get('simd_lanes_fp32')} fp32 SIMD lanes, L1d {hardware.get('l1d_bytes')} B, "
          f"L2 {hardware.get('l2_bytes')} B, L3 {hardware.get('l3_bytes')} B, "
          f"peak {hardware.get('peak_gflops', 0):.0f} GFLOP/s")
    parts = [
        f"Workload: {workload.get('name')}: {workload.get('description', '')}; shapes {workload.get('shapes')}; "
        f"dtype {workload.get('dtype', 'float32')}; {workload.get('flops', 0) / 1e9:.3g} GFLOP.",
        f"Hardware: {hw}.",
        "Knobs (current value, constraints):",
        *[f"- {knob.describe()}" for knob in knobs.values()],
        "Current schedule (TVMScript, trimmed):",
        trim_script(script),
        "Measured history along this path:",
        *(history_lines(history) or ["- (none yet)"]),
    ]
    if siblings:
        parts += ["Other edits tried from the same schedule:",
                  *[f"- {json.dumps(s['edit'])}: {_latency(s.get('latency_s'))}" for s in siblings]]
    parts += [
        f"Propose {k} different edits that should make this schedule faster. Each edit sets one or more knobs to new "
        "allowed values (tile factors must multiply to the loop extent). Answer as JSON: "
        '{"edits": [{"changes": {"KNOB": VALUE, ...}, "rationale": "one line"}]}',
    ]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]
