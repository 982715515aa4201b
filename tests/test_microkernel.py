"""The structural design space (register micro-kernels, packed weights, fusion choices): every
structure builds and computes the right result, on the seed workloads and on other shapes and
families; structural edits round-trip through knobs; a layout-rewritten database applies with
stock TVM."""

import numpy as np
import pytest

from shared_mcts.measure.correctness import check_correctness
from shared_mcts.space.blocks import analyze
from shared_mcts.space.space import MICRO, STOCK, ScheduleSpace
from shared_mcts.workloads import Workload, get_workload

from .conftest import DATA


def _batched_matmul() -> Workload:
    def make():
        from tvm import te

        a = te.placeholder((3, 40, 24), name="A")
        b = te.placeholder((3, 24, 48), name="B")
        k = te.reduce_axis((0, 24), name="k")
        c = te.compute((3, 40, 48), lambda n, i, j: te.sum(a[n, i, k] * b[n, k, j], axis=k), name="bmm")
        return te.create_prim_func([a, b, c])

    return Workload("bmm", "batched matmul", {}, 2 * 3 * 40 * 48 * 24, make, 2,
                    reference=lambda args: [np.matmul(args[0], args[1])])


def _conv(channels_in=16, channels_out=32, size=12, kernel=3) -> Workload:
    from shared_mcts.workloads.catalog import conv2d

    return conv2d("conv-small", channels_in, channels_out, size, kernel, description="a conv of other shapes")


WORKLOADS = {
    "llama-mlp": lambda: get_workload("llama-mlp"),
    "flux-conv": lambda: get_workload("flux-conv"),
    "llama-attention": lambda: get_workload("llama-attention"),
    "llama-attention-softmax": lambda: get_workload("llama-attention-softmax"),
    "user-gemm": lambda: get_workload(f"{DATA / 'small_matmul.py'}:matmul_packed_weight"),
    "bmm": _batched_matmul,
    "conv-small": _conv,
}


@pytest.fixture(scope="module")
def micro_spaces(target):
    return {name: ScheduleSpace(make(), target, space=MICRO) for name, make in WORKLOADS.items()}


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_structure_builds_and_is_correct(micro_spaces, target, name):
    space = micro_spaces[name]
    assert space.designs and all(d.family == MICRO for d in space.designs)
    for index, design in enumerate(space.designs):
        candidate, reason = space.build(index, {s.knob.name: s.knob.value for s in design.sites})
        assert candidate is not None, (space.describe_space(index), reason)
        check = check_correctness(space.workload, candidate.mod, target)
        assert check.ok, (space.describe_space(index), check.message)


def test_weights_are_packed_outside_the_kernel(micro_spaces):
    mlp = micro_spaces["llama-mlp"].initial()[0].mod.script()
    assert mlp.count("meta_schedule.layout_rewrite_preproc") == 3  # Wg, Wu, Wd
    user = micro_spaces["user-gemm"].initial()[0].mod.script()
    assert "meta_schedule.layout_rewrite_preproc" in user  # the PrimFunc's own layout_free_buffers
    assert "layout_rewrite_preproc" not in micro_spaces["bmm"].initial()[0].mod.script()


def test_layouts_come_from_the_iteration_structure():
    conv = analyze(get_workload("flux-conv").mod()["main"], frozenset({1})).contractions["conv"]
    layouts = {(lay.vector, lay.row, lay.streamed.buffer) for lay in conv.layouts()}
    assert layouts == {("x", "k", "pad"), ("k", "x", "weight")}
    attention = analyze(get_workload("llama-attention").mod()["main"]).contractions
    first = attention["scores"].layouts()[0]
    assert first.needs_packing and not first.streamed.weight  # K is strided along j: packed in the kernel
    assert not attention["out"].layouts()[0].needs_packing


def test_structural_edit_round_trips_through_knobs(micro_spaces):
    space = micro_spaces["llama-mlp"]
    base = space.initial()[0]
    knobs = space.knobs(base)
    assert knobs["h/materialize"].value is True and knobs["h/materialize"].kind == "structure"
    assert "materialized" in knobs["h/materialize"].constraints() or "own buffer" in knobs["h/materialize"].constraints()
    inlined, reason = space.apply(base, {"h/materialize": False, "down/kd/tile": [256, 8]})
    assert reason is None
    assert space.knobs(inlined)["h/materialize"].value is False
    assert inlined.values["down/kd/tile"] == (256, 8)
    assert "T.sblock(\"h\")" not in inlined.mod.script()  # inlined into down
    back, reason = space.apply(inlined, {"h/materialize": True, "down/kd/tile": list(base.values["down/kd/tile"])})
    assert reason is None and back.key == base.key and not back.repairs


def test_structural_change_repairs_what_no_longer_fits(micro_spaces):
    space = micro_spaces["flux-conv"]
    base = space.initial()[0]
    assert space.knobs(base)["conv/vector"].value == "x"
    moved, reason = space.apply(base, {"conv/vector": "k"})
    assert reason is None and space.knobs(moved)["conv/vector"].value == "k"
    assert any(r.startswith("conv/x/tile") or r.startswith("conv/k/tile") for r in moved.repairs), moved.repairs
    bad, reason = space.apply(base, {"conv/vector": "y"})
    assert bad is None and "not one of" in reason
    bad, reason = space.apply(base, {"h/materialize": True})
    assert bad is None and "unknown knob" in reason


def test_widened_space_switches_between_families(target):
    space = ScheduleSpace(get_workload("flux-conv"), target)
    families = {d.family for d in space.designs}
    assert families == {MICRO, STOCK}
    micro = next(c for c in space.initial() if space.designs[c.space].family == MICRO)
    stock, reason = space.apply(micro, {"space": "stock"})
    assert reason is None and space.designs[stock.space].family == STOCK
    assert "stock/sketch" in space.knobs(stock) and "conv/vector" not in space.knobs(stock)
    again, reason = space.apply(stock, {"conv/vector": "k"})  # a micro knob moves back to micro
    assert reason is None and space.designs[again.space].family == MICRO


def test_layout_rewritten_database_applies_with_stock_tvm(micro_spaces, target, tmp_path):
    """The packed kernel goes through TVM's own path (JSONDatabase -> compile_tir -> tvm.compile)
    and matches numpy."""
    import tvm
    from tvm.s_tir import meta_schedule as ms
    from tvm.target import Target

    space = micro_spaces["llama-mlp"]
    workload = space.workload
    candidate = space.initial()[0]
    database = ms.database.JSONDatabase(work_dir=str(tmp_path))
    entry = database.commit_workload(workload.mod())
    database.commit_tuning_record(ms.database.TuningRecord(candidate.trace, entry, [1e-3], Target(target),
                                                           ms.arg_info.ArgInfo.from_prim_func(workload.mod()["main"])))
    reloaded = ms.database.JSONDatabase(work_dir=str(tmp_path))
    sch = ms.tir_integration.compile_tir(reloaded, workload.mod(), Target(target))
    assert sch is not None and "layout_rewrite_preproc" in sch.mod.script()
    executable = tvm.compile(sch.mod, target=Target(target))
    inputs = workload.make_inputs(3)
    dev = tvm.cpu()
    out = tvm.runtime.tensor(np.zeros((128, 512), "float32"), dev)
    executable.jit()["main"](*[tvm.runtime.tensor(a, dev) for a in inputs], out)
    expected = workload.reference(inputs)[0]
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-3 * np.abs(expected).max())
