from tvm.script import tirx as T


@T.prim_func(s_tir=True)
def main(x: T.Buffer((256, 256), "float32"), y: T.Buffer((256, 256), "float32")):
    for i, j in T.grid(256, 256):
        y[i, j] = x[i, j] +* 2
