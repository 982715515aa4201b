"""Reading edits out of a model's answer. The answer is data: parsed as JSON, never executed.
Tolerant of code fences and chatter around the JSON; bounded in size."""

from __future__ import annotations

import json

from ...search.proposal import Edit

MAX_ANSWER_CHARS = 64_000
MAX_OBJECT_STARTS = 20  # bounds the scan to O(20 n) on adversarial text like "{{{{..."


def extract_json(text: str):
    """The first JSON object in `text` (whole text, a fenced block, or the first balanced
    {...}); None if there is none."""
    if not isinstance(text, str):
        return None
    text = text[:MAX_ANSWER_CHARS]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    start = text.find("{")
    for _ in range(MAX_OBJECT_STARTS):
        if start == -1:
            break
        depth, in_string, escaped = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        return json.loads(text[start:i + 1])
                    except json.JSONDecodeError:
                        break
        start = text.find("{", start + 1)
    return None


def edits_from_answer(answer, k: int) -> tuple[list[Edit], list[str], str | None]:
    """(edits, problems, next_model). Structural problems are reported, not raised; whether a
    value is allowed is the schedule space's call, later."""
    if not isinstance(answer, dict):
        return [], ["the answer holds no JSON object"], None
    raw = answer.get("edits")
    if isinstance(raw, dict):  # a single edit not wrapped in a list
        raw = [raw]
    if not isinstance(raw, list):
        return [], ["no 'edits' list in the answer"], None
    edits, problems = [], []
    for i, item in enumerate(raw):
        if len(edits) == k:
            problems.append(f"{len(raw) - k} edits beyond the {k} asked for were ignored")
            break
        if not isinstance(item, dict):
            problems.append(f"edit {i}: not an object")
            continue
        changes = item.get("changes")
        if changes is None:  # tolerate {"KNOB": value, "rationale": ...} without the wrapper
            changes = {key: value for key, value in item.items() if key != "rationale"}
        if not isinstance(changes, dict) or not changes:
            problems.append(f"edit {i}: no changes")
            continue
        rationale = item.get("rationale", "")
        edits.append(Edit(dict(changes), str(rationale)[:200] if rationale is not None else ""))
    next_model = answer.get("next_model")
    return edits, problems, next_model if isinstance(next_model, str) else None
