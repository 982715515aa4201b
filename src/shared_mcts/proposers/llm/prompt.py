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

from ...space.knobs import CATEGORICAL, COMPUTE_LOCATION, SPACE, STRUCTURE, TILE, Knob, tile_neighbours

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


def knob_schema(knob: Knob, small: bool = False) -> dict:
    """small: only values that differ from the current one, and for tiles only the valid
    one-step tilings (a small model cannot multiply); otherwise any list of positive integers."""
    if knob.kind == TILE and small:
        return {"enum": [list(v) for v in tile_neighbours(knob)]}
    if knob.kind == TILE:
        return {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": knob.parts, "maxItems": knob.parts}
    if knob.kind in (CATEGORICAL, SPACE, STRUCTURE):
        return {"enum": [c for c in knob.choices if not small or c != knob.value]}
    if knob.kind == COMPUTE_LOCATION:
        return {"type": "integer", "minimum": -2}
    return {}


def _changes_schema(knobs: dict[str, Knob], small: bool) -> dict:
    if not small:
        return {"type": "object", "properties": {n: knob_schema(kn) for n, kn in knobs.items()},
                "additionalProperties": False, "minProperties": 1}
    # One knob per edit, as alternatives: a grammar that grows linearly with the knobs (optional
    # properties make llama.cpp's grammar, and so its sampling, much larger and slower).
    options = []
    for name, knob in knobs.items():
        values = knob_schema(knob, small=True)
        if values.get("enum") == []:
            continue
        options.append({"type": "object", "properties": {name: values}, "required": [name],
                        "additionalProperties": False})
    return {"anyOf": options}


def answer_schema(knobs: dict[str, Knob], k: int, next_models: list[str] | None = None,
                  small_schema: bool = False) -> dict:
    """JSON schema of an answer: 1..k edits, each a set of knob changes with a one-line reason;
    optionally the model that should act next (COLT-style joint action)."""
    edit = {
        "type": "object",
        "properties": {
            "changes": _changes_schema(knobs, small_schema),
            "rationale": {"type": "string", "maxLength": 200},
        },
        "required": ["changes", "rationale"],
        "additionalProperties": False,
    }
    # A small model stops after one edit unless the grammar asks for all k.
    schema = {"type": "object", "properties": {"edits": {"type": "array", "items": edit,
                                                         "minItems": k if small_schema else 1, "maxItems": k}},
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


def micro_kernel_guide(knobs: dict[str, Knob], hardware: dict) -> list[str]:
    """What the structural space means, in words a model can act on (only when the node has it)."""
    if not any(k.roles for k in knobs.values()) and "space" not in knobs:
        return []
    lanes = hardware.get("simd_lanes_fp32") or 16
    registers = 32 if lanes >= 16 else 16
    fma = hardware.get("fma_units") or 2
    return [
        "How the 'micro' space computes each contraction (GEMM, batched matmul, convolution): a register "
        "micro-kernel. Per cache block, an accumulator tile of (register rows) x (register vectors x "
        f"{lanes} lanes) floats lives in the {registers} vector registers; for each step of the reduction it "
        "loads `vectors` vectors of the streamed operand and broadcasts one value of the other operand per row, "
        "then does rows x vectors FMAs. Rules of thumb: rows x vectors + vectors + 1 <= "
        f"{registers - 2} (or registers spill), rows x vectors >= {min(fma * 4, 8)} (FMA latency x {fma} FMA "
        "units), more FMAs per load (rows x vectors / (rows + vectors)) is better; the parallel factors of the "
        "row and vector tiles times the other outer loops should give every core at least two tiles; the "
        "unrolled inner reduction factor is usually 4-8; tiny reductions (3x3 windows) are best fully inner. "
        "Weights are packed once outside the kernel in the order the kernel reads them. Structural knobs "
        "choose the design space: which iterator is vectorized, and whether an elementwise producer is "
        "materialized (computed once) or inlined (recomputed for every output panel); 'space' switches "
        "between these templates and MetaSchedule's default sketches. Changing a structural knob may reset "
        "tile knobs that no longer fit; tile factors must multiply to the knob's extent.",
    ]


def build_messages(workload: dict, hardware: dict, knobs: dict[str, Knob], script: str, history: list[dict],
                   k: int, tried: list[dict] | None = None, siblings: list[dict] | None = None,
                   next_models: list[str] | None = None, script_chars: int = 3000) -> list[dict]:
    """Chat messages for one proposal call."""
    hw = (f"{hardware.get('model_name', 'CPU')}, LLVM cpu {hardware.get('llvm_cpu')}, {hardware.get('cores')} cores, "
          f"{hardware.get('simd_lanes_fp32')} fp32 SIMD lanes, {hardware.get('fma_units')} FMA units, "
          f"L1d {hardware.get('l1d_bytes')} B, "
          f"L2 {hardware.get('l2_bytes')} B, L3 {hardware.get('l3_bytes')} B, "
          f"peak {hardware.get('peak_measured_gflops') or hardware.get('peak_gflops', 0):.0f} GFLOP/s")
    # What stays the same from call to call comes first, so that a local model reuses its
    # cache for that prefix (prompt processing dominates a small CPU model's time).
    parts = [
        f"Workload: {workload.get('name')}: {workload.get('description', '')}; shapes {workload.get('shapes')}; "
        f"dtype {workload.get('dtype', 'float32')}; {workload.get('flops', 0) / 1e9:.3g} GFLOP.",
        f"Hardware: {hw}.",
        "Knobs and the values they allow:",
        *micro_kernel_guide(knobs, hardware),
        *[f"- {knob.name}: {knob.constraints()}" for knob in knobs.values()],
        f"Propose {k} different edits that should make the current schedule faster. Each edit sets one or more knobs "
        "to new allowed values (tile factors must multiply to the loop extent). Answer as JSON: "
        '{"edits": [{"changes": {"KNOB": VALUE, ...}, "rationale": "one line"}]}',
        "Current knob values: " + json.dumps({name: knob.json_value() for name, knob in knobs.items()}),
        "Current schedule (TVMScript, trimmed):",
        trim_script(script, script_chars),
        "Measured history along this path:",
        *(history_lines(history) or ["- (none yet)"]),
    ]
    if tried:
        parts += ["Edits already tried from this schedule (do not repeat them):",
                  *[f"- {json.dumps(s['edit'])}: {_latency(s.get('latency_s'))}" for s in tried]]
    if siblings:
        parts += ["Best other edits tried from the previous schedule:",
                  *[f"- {json.dumps(s['edit'])}: {_latency(s.get('latency_s'))}" for s in siblings]]
    if next_models:
        parts.append(f"Also name in \"next_model\" the model that should propose the next change, one of "
                     f"{', '.join(next_models)}: a cheaper one while easy gains remain, a stronger one when stuck.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]
