"""Prompt, schema and answer parsing for LLM proposers (pure)."""

import json

from shared_mcts.proposers.llm.parse import MAX_ANSWER_CHARS, edits_from_answer, extract_json
from shared_mcts.proposers.llm.prompt import answer_schema, build_messages, history_lines, trim_script
from shared_mcts.space.knobs import CATEGORICAL, TILE, Knob

KNOBS = {
    "gate/j/tile": Knob("gate/j/tile", TILE, (16, 2, 16, 4), block="gate", loop="j", extent=2048, parts=4,
                        max_innermost=64, loop_kind="spatial", innermost_spatial=True),
    "root/unroll": Knob("root/unroll", CATEGORICAL, 0, choices=(0, 16, 64, 512)),
}


def test_schema_constrains_every_knob():
    schema = answer_schema(KNOBS, 3, next_models=["local:smollm2", "expert"])
    edit = schema["properties"]["edits"]["items"]
    changes = edit["properties"]["changes"]["properties"]
    assert changes["gate/j/tile"]["minItems"] == changes["gate/j/tile"]["maxItems"] == 4
    assert changes["root/unroll"] == {"enum": [0, 16, 64, 512]}
    assert schema["properties"]["edits"]["maxItems"] == 3
    assert schema["properties"]["next_model"] == {"enum": ["local:smollm2", "expert"]}


def test_messages_hold_workload_hardware_knobs_schedule_and_history():
    history = [{"proposer": "sample", "edit": {}, "latency_s": 0.004},
               {"proposer": "expert", "edit": {"root/unroll": 64}, "latency_s": 0.002},
               {"proposer": "mutate", "edit": {"gate/j/tile": [32, 1, 16, 4]}, "latency_s": 0.003}]
    messages = build_messages({"name": "llama-mlp", "shapes": {"T": 128}, "flops": 8e8}, {"simd_lanes_fp32": 16, "cores": 2,
                              "peak_gflops": 320}, KNOBS, "# comment\nfor i in range(4):\n    T.reads(A[i])\n    A[i] = 1", history, 4)
    text = messages[1]["content"]
    for words in ("llama-mlp", "16 fp32 SIMD lanes", '"gate/j/tile": [16, 2, 16, 4]', "for i in range(4):",
                  "helped: x2.00", "hurt: x0.67", "Propose 4 different edits"):
        assert words in text, words
    assert "T.reads" not in text and "# comment" not in text
    assert "score" not in text.lower()
    # The node-independent part comes first (a local model reuses its cache for it).
    assert text.index("Knobs and the values they allow") < text.index("Current knob values")


def test_history_of_failures():
    lines = history_lines([{"proposer": "sample", "edit": {}, "latency_s": 0.01},
                           {"proposer": "x", "edit": {"a": 1}, "latency_s": None}])
    assert lines[1].endswith("failed")


def test_trim_script_bounds_length():
    assert len(trim_script("x = 1\n" * 5000, limit=100)) < 130


def test_extract_json_variants():
    assert extract_json('{"edits": []}') == {"edits": []}
    assert extract_json('Sure! ```json\n{"edits": [{"changes": {"a": 1}}]}\n``` hope it helps') == {
        "edits": [{"changes": {"a": 1}}]}
    assert extract_json('text {"a": "}{"} more {"b": 2}') == {"a": "}{"}
    assert extract_json("no json here") is None
    assert extract_json("{broken") is None
    assert extract_json(None) is None
    assert extract_json("{" * (MAX_ANSWER_CHARS * 2)) is None


def test_edits_from_answer_is_tolerant_and_bounded():
    answer = {"edits": [{"changes": {"root/unroll": 64}, "rationale": "unroll more"}, "junk",
                        {"changes": {}}, {"root/unroll": 16, "rationale": "unwrapped"},
                        {"changes": {"root/unroll": 512}}], "next_model": "expert"}
    edits, problems, next_model = edits_from_answer(answer, k=2)
    assert [e.changes for e in edits] == [{"root/unroll": 64}, {"root/unroll": 16}]
    assert next_model == "expert"
    assert any("not an object" in p for p in problems) and any("no changes" in p for p in problems)
    assert edits_from_answer([1, 2], 3)[1] == ["the answer holds no JSON object"]
    assert edits_from_answer({"edits": {"changes": {"a": 1}}}, 3)[0][0].changes == {"a": 1}
    assert json.dumps(edits[0].changes)  # plain data
