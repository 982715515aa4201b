"""MetaSchedule's stock design spaces on the seed workloads: knob names, validated edits, replay,
dedupe. (The structural micro-kernel space: test_microkernel.py.)"""

import random

import pytest

from shared_mcts.space.space import ScheduleSpace
from shared_mcts.workloads import get_workload


@pytest.fixture(scope="module")
def spaces(target):
    return {name: ScheduleSpace(get_workload(name), target, space="stock") for name in ("llama-attention", "flux-conv", "llama-mlp")}


def test_readable_knob_names(spaces):
    mlp = spaces["llama-mlp"]
    names = {s.knob.name for s in mlp.sites[0]}
    assert {"gate/i/tile", "gate/j/tile", "gate/kg/tile", "down/kd/tile", "root/unroll"} <= names
    assert {s.knob.name for s in spaces["flux-conv"].sites[0]} >= {"conv/k/tile", "conv/rc/tile", "pad/compute_at"}
    assert len(mlp.spaces) > 1 and "stock/sketch" in mlp.knobs(mlp.initial()[0])
    gate_j = next(s.knob for s in mlp.sites[0] if s.knob.name == "gate/j/tile")
    assert gate_j.extent == 2048 and gate_j.parts == 4 and gate_j.loop_kind == "spatial" and gate_j.innermost_spatial
    scores_j = next(s.knob for s in spaces["llama-attention"].sites[0] if s.knob.name == "scores/j/tile")
    assert not scores_j.contiguous  # K is indexed [.., j, d]: j is strided


def test_apply_replays_and_reads_back(spaces):
    space = spaces["llama-mlp"]
    base = space.initial()[0]
    edited, reason = space.apply(base, {"gate/j/tile": [16, 2, 4, 16], "root/unroll": 64})
    assert reason is None
    assert edited.values["gate/j/tile"] == (16, 2, 4, 16) and edited.values["root/unroll"] == 64
    assert edited.key != base.key
    assert "T.vectorized" in edited.mod.script() or "vectorized" in edited.mod.script()
    again, _ = space.apply(base, {"gate/j/tile": [16, 2, 4, 16], "root/unroll": 64})
    assert again.key == edited.key, "the same decisions give the same structural hash"


@pytest.mark.parametrize("changes, words", [
    ({"gate/j/tile": [3, 2, 1, 16]}, "multiply to"),
    ({"gate/j/tile": [1, 1, 16, 128]}, "exceeds 64"),
    ({"root/unroll": 7}, "not one of"),
    ({"no/such/knob": 1}, "unknown knob"),
])
def test_invalid_edits_never_reach_tvm(spaces, changes, words):
    space = spaces["llama-mlp"]
    candidate, reason = space.apply(space.initial()[0], changes)
    assert candidate is None and words in reason


def test_tvm_rejections_are_reasons_not_crashes(spaces):
    space = spaces["flux-conv"]
    candidate, reason = space.apply(space.initial()[0], {"pad/compute_at": 97})
    assert candidate is None and reason


def test_switching_design_space_keeps_shared_knobs(spaces):
    space = spaces["llama-mlp"]
    base = space.initial()[0]
    other = next(i for i in range(len(space.spaces)) if i != base.space)
    moved, reason = space.apply(base, {"stock/sketch": other})
    assert reason is None and moved.space == other
    assert moved.values["gate/j/tile"] == base.values["gate/j/tile"]


def test_random_samples_are_valid_and_seeded(spaces):
    space = spaces["llama-attention"]
    a = space.sample(3, random.Random(5))
    b = space.sample(3, random.Random(5))
    assert [c.key for c in a] == [c.key for c in b]
    for c in a:
        assert all(v is not None for v in c.values.values())
