"""The non-LLM proposers on the seed workloads: their edits must be valid and seeded."""

import random

import pytest

from shared_mcts.costmodel import XGBRanker
from shared_mcts.hardware import host_info
from shared_mcts.proposers import make_proposers
from shared_mcts.proposers.base import ProposalRequest
from shared_mcts.space.space import ScheduleSpace
from shared_mcts.workloads import get_workload


@pytest.fixture(scope="module")
def setups(target):
    hardware = host_info(target).as_dict()
    out = {}
    for name in ("llama-attention", "flux-conv", "llama-mlp"):
        space = ScheduleSpace(get_workload(name), target)
        ranker = XGBRanker(space)
        out[name] = (space, ranker, make_proposers(["expert", "mutate", "greedy"], space, ranker, hardware), hardware)
    return out


def _request(space, candidate, hardware, seed=0, k=6):
    return ProposalRequest(1, candidate, space.knobs(candidate), [], k, random.Random(seed), hardware)


@pytest.mark.parametrize("workload", ["llama-attention", "flux-conv", "llama-mlp"])
@pytest.mark.parametrize("model", ["expert", "mutate", "greedy"])
def test_edits_are_valid_and_seeded(setups, workload, model):
    space, _, proposers, hardware = setups[workload]
    candidate = space.initial()[0]
    proposal = proposers[model].propose(_request(space, candidate, hardware))
    assert 1 <= len(proposal.edits) <= 6
    for edit in proposal.edits:
        new, reason = space.apply(candidate, edit.changes)
        assert reason is None, (edit.changes, reason)
        assert new.key != candidate.key or model == "mutate"
    again = proposers[model].propose(_request(space, candidate, hardware))
    assert [e.changes for e in again.edits] == [e.changes for e in proposal.edits]


def test_expert_follows_the_hardware(setups):
    space, _, proposers, hardware = setups["llama-mlp"]
    candidate = space.initial()[0]
    edit = proposers["expert"].propose(_request(space, candidate, hardware, k=1)).edits[0]
    lanes = hardware["simd_lanes_fp32"]
    vector_tiles = [v for name, v in edit.changes.items() if name.endswith("/j/tile")]
    assert vector_tiles and all(v[-1] % lanes == 0 for v in vector_tiles)
    assert edit.changes.get("root/unroll", 64) != 512


def test_expert_leaves_strided_blocks_alone(setups):
    space, _, proposers, hardware = setups["llama-attention"]
    candidate = space.initial()[0]
    for edit in proposers["expert"].propose(_request(space, candidate, hardware)).edits:
        assert not any(name.startswith("scores/j/") for name in edit.changes)


def test_greedy_says_when_the_cost_model_is_untrained(setups):
    space, ranker, proposers, hardware = setups["flux-conv"]
    assert not ranker.trained
    proposal = proposers["greedy"].propose(_request(space, space.initial()[0], hardware))
    assert "untrained" in proposal.note
