# A TVMScript workload file, as `shared-mcts` accepts it (a path with no ':function').
from tvm.script import tirx as T


@T.prim_func(s_tir=True)
def main(x: T.Buffer((256, 256), "float32"), y: T.Buffer((256, 256), "float32")):
    T.func_attr({"tirx.noalias": True})
    for i, j in T.grid(256, 256):
        with T.sblock("y"):
            v_i, v_j = T.axis.remap("SS", [i, j])
            T.reads(x[v_i, v_j])
            T.writes(y[v_i, v_j])
            y[v_i, v_j] = x[v_i, v_j] * T.float32(2.0) + T.float32(1.0)
