"""The non-LLM proposers on the seed workloads: their edits must be valid and seeded."""

import random

import pytest

from shared_mcts.costmodel import XGBRanker
from shared_mcts.hardware import host_info
from shared_mcts.proposers import make_proposers
from shared_mcts.search.proposal import ProposalRequest
from shared_mcts.space.space import ScheduleSpace
from shared_mcts.workloads import get_workload


@pytest.fixture(scope="module")
def setups(target):
    hardware = host_info(target).as_dict()
    out = {}
    for name in ("llama-attention", "flux-conv", "llama-mlp"):
        for kind in ("stock", "widened"):
            space = ScheduleSpace(get_workload(name), target, space=kind)
            ranker = XGBRanker(space)
            setup = (space, ranker, make_proposers(["expert", "mutate", "greedy"], space, ranker, hardware), hardware)
            out[name if kind == "stock" else (name, kind)] = setup
    return out


def _request(space, candidate, hardware, seed=0, k=6):
    return ProposalRequest(1, candidate, space.knobs(candidate), [], k, random.Random(seed), hardware,
                           preview=lambda changes: space.preview(candidate, changes))


@pytest.mark.parametrize("kind", ["stock", "widened"])
@pytest.mark.parametrize("workload", ["llama-attention", "flux-conv", "llama-mlp"])
@pytest.mark.parametrize("model", ["expert", "mutate", "greedy"])
def test_edits_are_valid_and_seeded(setups, workload, model, kind):
    space, _, proposers, hardware = setups[workload if kind == "stock" else (workload, kind)]
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


def test_expert_builds_register_micro_kernels_from_the_hardware(setups):
    space, _, proposers, hardware = setups[("llama-mlp", "widened")]
    candidate = space.initial()[0]
    assert space.designs[candidate.space].family == "micro"
    registers = 32 if hardware["simd_lanes_fp32"] >= 16 else 16
    edits = proposers["expert"].propose(_request(space, candidate, hardware, k=4)).edits
    tiled = [e for e in edits if any(name.endswith("/tile") for name in e.changes)]
    assert tiled
    for edit in tiled:
        edited, reason = space.apply(candidate, edit.changes)
        assert reason is None
        for block in ("gate", "up", "down"):
            rows, vectors = edited.values[f"{block}/i/tile"][-1], edited.values[f"{block}/j/tile"][-1]
            assert rows * vectors + vectors + 1 <= registers  # accumulators and operands fit the register file
            assert rows * vectors >= 8  # enough independent FMAs to cover FMA latency
        assert "accumulators" in edit.rationale


def test_expert_reasons_about_structure(setups):
    space, _, proposers, hardware = setups[("llama-mlp", "widened")]
    base = space.initial()[0]
    inlined, _ = space.apply(base, {"h/materialize": False})
    first = proposers["expert"].propose(_request(space, inlined, hardware, k=3)).edits[0]
    assert first.changes["h/materialize"] is True
    stock = next(c for c in space.initial() if space.designs[c.space].family == "stock")
    edit = proposers["expert"].propose(_request(space, stock, hardware, k=3)).edits[0]
    assert edit.changes["space"] == "micro"
    moved, reason = space.apply(stock, edit.changes)  # structure and tiles in one edit
    assert reason is None and space.designs[moved.space].family == "micro" and not moved.repairs
    assert all(moved.values[f"{b}/i/tile"][-1] * moved.values[f"{b}/j/tile"][-1] >= 8 for b in ("gate", "up", "down"))
