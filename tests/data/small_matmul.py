"""A user workload file for the tests: functions returning PrimFuncs (and some that don't)."""

from tvm import te


def matmul():
    a = te.placeholder((64, 64), name="A")
    b = te.placeholder((64, 64), name="B")
    k = te.reduce_axis((0, 64), name="k")
    c = te.compute((64, 64), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    return te.create_prim_func([a, b, c])


def not_a_primfunc():
    return 42


def raises():
    raise RuntimeError("boom")


def matmul_packed_weight():
    """B is a weight: declared layout-free, so the structural space packs it outside the kernel."""
    a = te.placeholder((48, 96), name="A")
    b = te.placeholder((96, 80), name="B")
    k = te.reduce_axis((0, 96), name="k")
    c = te.compute((48, 80), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    return te.create_prim_func([a, b, c]).with_attr("layout_free_buffers", [1])
