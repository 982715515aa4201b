import numpy as np
import pytest

from shared_mcts.errors import UserError
from shared_mcts.measure import check_correctness
from shared_mcts.workloads import get_workload, list_workloads
from shared_mcts.workloads.catalog import conv2d

from .conftest import DATA

SMALL = ["llama-attention", "llama-attention-softmax", "flux-conv", "llama-mlp", "llama-mlp-silu"]


def test_registry_has_seeds_variants_and_full_sizes():
    names = {w.name for w in list_workloads()}
    assert set(SMALL) | {"llama-attention-full", "flux-conv-full", "llama-mlp-full"} <= names


def test_seed_shapes_match_the_course_project():
    assert get_workload("llama-attention").shapes == {"B": 1, "H": 8, "S": 128, "D": 64}
    assert get_workload("flux-conv").shapes == {"N": 1, "C": 128, "K": 128, "H": 64, "W": 64, "R": 3, "S": 3}
    assert get_workload("llama-mlp").shapes == {"T": 128, "H": 512, "I": 2048}


def test_flop_counts():
    assert get_workload("llama-attention").flops == 2 * 2 * 8 * 128 * 128 * 64
    assert get_workload("flux-conv").flops == 2 * 128 * 64 * 64 * 128 * 9
    assert get_workload("llama-mlp").flops == 3 * 2 * 128 * 512 * 2048 + 128 * 2048


@pytest.mark.parametrize("name", SMALL)
def test_untuned_tvm_program_matches_numpy(name, target):
    workload = get_workload(name)
    result = check_correctness(workload, workload.mod(), target)
    assert result.ok, result.message
    assert result.reference == "numpy"


def test_conv_reference_matches_direct_loops():
    small = conv2d("tiny-conv", 3, 4, 6, 3, description="")
    data, weight = small.make_inputs(1)
    padded = np.pad(data, ((0, 0), (0, 0), (1, 1), (1, 1)))
    direct = np.zeros((1, 4, 6, 6), dtype=np.float64)
    for k in range(4):
        for y in range(6):
            for x in range(6):
                direct[0, k, y, x] = np.sum(padded[0, :, y:y + 3, x:x + 3] * weight[k])
    np.testing.assert_allclose(small.reference([data, weight])[0], direct, rtol=1e-5, atol=1e-6)


def test_torch_references_agree_with_numpy():
    pytest.importorskip("torch")
    for name in SMALL:
        workload = get_workload(name)
        inputs = workload.make_inputs(0)
        np.testing.assert_allclose(workload.torch_reference(inputs)[0], workload.reference(inputs)[0], rtol=1e-3, atol=1e-4)


def test_python_file_workload(target):
    workload = get_workload(f"{DATA / 'small_matmul.py'}:matmul")
    assert workload.num_inputs == 2 and workload.flops == 2 * 64 ** 3
    result = check_correctness(workload, workload.mod(), target)
    assert result.ok and result.reference == "untuned program"


def test_tvmscript_file_workload():
    workload = get_workload(str(DATA / "small_add.tvmscript.py"))
    assert workload.num_inputs == 1
    assert workload.arg_specs() == [((256, 256), "float32"), ((256, 256), "float32")]


@pytest.mark.parametrize("spec, words", [
    ("no-such-workload", "unknown workload"),
    ("missing/file.py:f", "not found"),
    (f"{DATA / 'small_matmul.py'}:nope", "no function"),
    (f"{DATA / 'small_matmul.py'}:not_a_primfunc", "expected a tvm PrimFunc"),
    (f"{DATA / 'small_matmul.py'}:raises", "boom"),
    (str(DATA / "broken.tvmscript.py"), "not valid TVMScript"),
])
def test_bad_workload_specs(spec, words):
    with pytest.raises(UserError, match=words):
        get_workload(spec)
