"""A user GEMM given to the bench as a file (`docs/results/user-gemm/gemm.py:ffn_up`).

The shape is BERT-base's FFN up-projection over 512 tokens: (512 x 768) @ (768 x 3072). B is the
layer's weight, so the PrimFunc declares it layout-free and the structural space may pack it
outside the timed kernel (as a deployment packs constants once).
"""

from tvm import te


def ffn_up():
    tokens, hidden, inner = 512, 768, 3072
    a = te.placeholder((tokens, hidden), name="A")
    b = te.placeholder((hidden, inner), name="B")
    k = te.reduce_axis((0, hidden), name="k")
    c = te.compute((tokens, inner), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    return te.create_prim_func([a, b, c]).with_attr("layout_free_buffers", [1])
