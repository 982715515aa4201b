"""Knob validation and access analysis: pure, no TVM."""

import math
import random

import pytest

from shared_mcts.space.analysis import innermost_contiguous
from shared_mcts.space.knobs import (
    CATEGORICAL,
    COMPUTE_LOCATION,
    TILE,
    Knob,
    random_tile,
    random_value,
    validate,
    validate_edit,
)

TILE_KNOB = Knob("gate/j/tile", TILE, (16, 2, 16, 4), block="gate", loop="j", extent=2048, parts=4, max_innermost=64,
                 loop_kind="spatial")
UNROLL = Knob("root/unroll", CATEGORICAL, 0, choices=(0, 16, 64, 512))


@pytest.mark.parametrize("value, words", [
    ([16, 2, 16, 3], "multiply to 1536"),
    ([1, 1, 16, 128], "exceeds 64"),
    ([2048, 1, 1], "expected 4 factors"),
    ([0, 2048, 1, 1], "positive"),
    ("16x2", "list of 4 integers"),
    ([16.0, 2, 16, 4], "list of 4 integers"),
])
def test_invalid_tiles_are_rejected(value, words):
    assert words in validate(TILE_KNOB, value)


def test_valid_values():
    assert validate(TILE_KNOB, [32, 1, 4, 16]) is None
    assert validate(UNROLL, 64) is None
    assert "not one of" in validate(UNROLL, 17)
    at = Knob("pad/compute_at", COMPUTE_LOCATION, 1)
    assert validate(at, -2) is None and "integer >= -2" in validate(at, -3)


def test_edit_validation():
    knobs = {k.name: k for k in (TILE_KNOB, UNROLL)}
    assert validate_edit(knobs, {"root/unroll": 16}) is None
    assert "unknown knob" in validate_edit(knobs, {"nope": 1})
    assert "at least one" in validate_edit(knobs, {})


def test_random_values_are_valid_and_different():
    rng = random.Random(0)
    for _ in range(50):
        tile = random_tile(TILE_KNOB, rng)
        assert validate(TILE_KNOB, list(tile)) is None and math.prod(tile) == 2048
        assert random_value(TILE_KNOB, rng) != TILE_KNOB.value
        assert random_value(UNROLL, rng) in (16, 64, 512)


def test_contiguity_of_the_vector_axis():
    script = '''
        with T.sblock("scores"):
            v_b, v_i, v_j, v_d = T.axis.remap("SSSR", [b, i, j, d])
            T.reads(Q[v_b, v_i, v_d], K[v_b, v_j, v_d])
        with T.sblock("out"):
            v_i, v_e, v_j = T.axis.remap("SSR", [i, e, j])
            T.reads(P[v_i, v_j], V[v_j, v_e])
        with T.sblock("conv"):
            v_k, v_y, v_x, v_r = T.axis.remap("SSSR", [k, y, x, r])
            T.reads(pad[v_r, v_y, v_x + v_r], w[v_k, v_r])
    '''
    assert innermost_contiguous(script) == {"scores": False, "out": True, "conv": True}


def test_tile_neighbours_are_valid_one_step_moves():
    from shared_mcts.space.knobs import TILE, Knob, tile_neighbours, validate

    knob = Knob("c/j/tile", TILE, (4, 4, 8), extent=128, parts=3, max_innermost=16)
    options = tile_neighbours(knob)
    assert (2, 8, 8) in options and (8, 2, 8) in options and (4, 8, 4) in options
    assert (4, 2, 16) in options and (4, 4, 8) not in options
    assert all(validate(knob, v) is None for v in options)
    assert (2, 4, 16) in options and (4, 1, 32) not in options  # innermost <= 16
