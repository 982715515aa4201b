"""The build function run inside MetaSchedule's builder workers.

It does what MetaSchedule's `default_build` does minus `import tvm.s_tir.tensor_intrin`,
which registers every CUDA/x86/ARM intrinsic and costs each worker 16-19 s per batch on
these machines. This module must stay cheap to import: workers import it by name.
"""


def lean_build(mod, target, _params):
    from tvm.driver import build as tvm_build  # TVM: loaded on use (seconds to import)
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock  # TVM: loaded on use (seconds to import)

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)
