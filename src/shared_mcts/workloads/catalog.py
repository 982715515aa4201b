"""The built-in workloads: the three seed kernels of the Shared-MCTS course project, faithful
variants of them, and full-size versions from the models they come from.

Each family is one function with shape parameters, so a seed and its full-size version differ
only in their arguments.
"""

from __future__ import annotations

import numpy as np

from .base import Workload


def _softmax_np(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _silu_np(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


# --- attention ------------------------------------------------------------------------------


def attention(name: str, batch: int, heads: int, seq: int, head_dim: int, softmax: bool, description: str) -> Workload:
    """O = (softmax(scale * Q Kᵀ) or Q Kᵀ) V per head."""
    scale = 1.0 / float(np.sqrt(head_dim))

    def make_func():
        from tvm import te  # TVM: loaded on use (seconds to import)

        q = te.placeholder((batch, heads, seq, head_dim), name="Q")
        k = te.placeholder((batch, heads, seq, head_dim), name="K")
        v = te.placeholder((batch, heads, seq, head_dim), name="V")
        d = te.reduce_axis((0, head_dim), name="d")
        scores = te.compute(
            (batch, heads, seq, seq),
            lambda b, h, i, j: te.sum(q[b, h, i, d] * k[b, h, j, d], axis=d),
            name="scores",
        )
        if softmax:
            jm = te.reduce_axis((0, seq), name="jm")
            row_max = te.compute((batch, heads, seq), lambda b, h, i: te.max(scores[b, h, i, jm] * scale, axis=jm), name="row_max")
            expd = te.compute(
                (batch, heads, seq, seq), lambda b, h, i, j: te.exp(scores[b, h, i, j] * scale - row_max[b, h, i]), name="exp"
            )
            js = te.reduce_axis((0, seq), name="js")
            row_sum = te.compute((batch, heads, seq), lambda b, h, i: te.sum(expd[b, h, i, js], axis=js), name="row_sum")
            probs = te.compute((batch, heads, seq, seq), lambda b, h, i, j: expd[b, h, i, j] / row_sum[b, h, i], name="probs")
        else:
            probs = scores
        j = te.reduce_axis((0, seq), name="j")
        out = te.compute(
            (batch, heads, seq, head_dim), lambda b, h, i, e: te.sum(probs[b, h, i, j] * v[b, h, j, e], axis=j), name="out"
        )
        return te.create_prim_func([q, k, v, out])

    def reference(args):
        q, k, v = args
        scores = q @ np.swapaxes(k, -1, -2)
        probs = _softmax_np(scores * scale) if softmax else scores
        return [(probs @ v).astype(q.dtype)]

    def torch_reference(args):
        import torch  # PyTorch: optional, only its anchor needs it

        q, k, v = (torch.from_numpy(a) for a in args)
        scores = q @ k.transpose(-1, -2)
        probs = torch.softmax(scores * scale, dim=-1) if softmax else scores
        return [(probs @ v).numpy()]

    matmul_flops = 2 * 2 * batch * heads * seq * seq * head_dim
    softmax_flops = 5 * batch * heads * seq * seq if softmax else 0  # scale, max, sub+exp, sum, div
    return Workload(
        name=name,
        description=description,
        shapes={"B": batch, "H": heads, "S": seq, "D": head_dim},
        flops=float(matmul_flops + softmax_flops),
        make_func=make_func,
        num_inputs=3,
        reference=reference,
        torch_reference=torch_reference,
    )


# --- conv2d ---------------------------------------------------------------------------------


def conv2d(name: str, channels_in: int, channels_out: int, size: int, kernel: int, description: str) -> Workload:
    """NCHW conv, N=1, stride 1, 'same' zero padding."""
    pad = kernel // 2
    n = 1

    def make_func():
        from tvm import te  # TVM: loaded on use (seconds to import)

        data = te.placeholder((n, channels_in, size, size), name="data")
        weight = te.placeholder((channels_out, channels_in, kernel, kernel), name="weight")
        padded = te.compute(
            (n, channels_in, size + 2 * pad, size + 2 * pad),
            lambda b, c, y, x: te.if_then_else(
                te.all(y >= pad, y < size + pad, x >= pad, x < size + pad), data[b, c, y - pad, x - pad], 0.0
            ),
            name="pad",
        )
        rc = te.reduce_axis((0, channels_in), name="rc")
        ry = te.reduce_axis((0, kernel), name="ry")
        rx = te.reduce_axis((0, kernel), name="rx")
        out = te.compute(
            (n, channels_out, size, size),
            lambda b, k, y, x: te.sum(padded[b, rc, y + ry, x + rx] * weight[k, rc, ry, rx], axis=[rc, ry, rx]),
            name="conv",
        )
        return te.create_prim_func([data, weight, out])

    def reference(args):
        # im2col + one sgemm: the fast way numpy can do it, so the vendor anchor is honest.
        data, weight = args
        padded = np.pad(data, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        cols = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), axis=(2, 3))  # n,c,y,x,ky,kx
        cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(n * size * size, channels_in * kernel * kernel)
        out = cols @ weight.reshape(channels_out, -1).T  # (n*y*x, k)
        return [np.ascontiguousarray(out.reshape(n, size, size, channels_out).transpose(0, 3, 1, 2)).astype(data.dtype)]

    def torch_reference(args):
        import torch  # PyTorch: optional, only its anchor needs it

        data, weight = (torch.from_numpy(a) for a in args)
        return [torch.nn.functional.conv2d(data, weight, padding=pad).numpy()]

    return Workload(
        name=name,
        description=description,
        shapes={"N": n, "C": channels_in, "K": channels_out, "H": size, "W": size, "R": kernel, "S": kernel},
        flops=float(2 * n * channels_out * size * size * channels_in * kernel * kernel),
        make_func=make_func,
        num_inputs=2,
        reference=reference,
        torch_reference=torch_reference,
        weights=("weight",),
    )


# --- gated MLP ------------------------------------------------------------------------------


def gated_mlp(name: str, tokens: int, hidden: int, inter: int, silu: bool, description: str) -> Workload:
    """out = (act(X Wg) * (X Wu)) Wd with act = SiLU or identity."""

    def make_func():
        from tvm import te  # TVM: loaded on use (seconds to import)

        x = te.placeholder((tokens, hidden), name="X")
        wg = te.placeholder((hidden, inter), name="Wg")
        wu = te.placeholder((hidden, inter), name="Wu")
        wd = te.placeholder((inter, hidden), name="Wd")
        kg = te.reduce_axis((0, hidden), name="kg")
        ku = te.reduce_axis((0, hidden), name="ku")
        gate = te.compute((tokens, inter), lambda i, j: te.sum(x[i, kg] * wg[kg, j], axis=kg), name="gate")
        up = te.compute((tokens, inter), lambda i, j: te.sum(x[i, ku] * wu[ku, j], axis=ku), name="up")
        if silu:
            act = te.compute((tokens, inter), lambda i, j: gate[i, j] * te.sigmoid(gate[i, j]), name="silu")
        else:
            act = gate
        h = te.compute((tokens, inter), lambda i, j: act[i, j] * up[i, j], name="h")
        kd = te.reduce_axis((0, inter), name="kd")
        out = te.compute((tokens, hidden), lambda i, j: te.sum(h[i, kd] * wd[kd, j], axis=kd), name="down")
        return te.create_prim_func([x, wg, wu, wd, out])

    def reference(args):
        x, wg, wu, wd = args
        gate = x @ wg
        act = _silu_np(gate) if silu else gate
        return [((act * (x @ wu)) @ wd).astype(x.dtype)]

    def torch_reference(args):
        import torch  # PyTorch: optional, only its anchor needs it

        x, wg, wu, wd = (torch.from_numpy(a) for a in args)
        gate = x @ wg
        act = torch.nn.functional.silu(gate) if silu else gate
        return [((act * (x @ wu)) @ wd).numpy()]

    flops = 3 * 2 * tokens * hidden * inter + tokens * inter + (4 * tokens * inter if silu else 0)
    return Workload(
        name=name,
        description=description,
        shapes={"T": tokens, "H": hidden, "I": inter},
        flops=float(flops),
        make_func=make_func,
        num_inputs=4,
        reference=reference,
        torch_reference=torch_reference,
        weights=("Wg", "Wu", "Wd"),
    )


def builtin_workloads() -> list[Workload]:
    # The seed kernels are the Shared-MCTS course project's; "-softmax"/"-silu" are their faithful
    # variants; "-full" are the real model sizes.
    return [
        attention("llama-attention", 1, 8, 128, 64, softmax=False,
                  description="Llama-style attention core Q·Kᵀ then ·V (softmax omitted)"),
        attention("llama-attention-softmax", 1, 8, 128, 64, softmax=True,
                  description="the seed attention with the 1/sqrt(D) scale and a row softmax"),
        # K/V are given per query head (GQA's 8 KV heads already broadcast), as a kernel sees them.
        attention("llama-attention-full", 1, 32, 512, 128, softmax=True,
                  description="Llama-3-8B attention prefill: 32 heads, head dim 128, 512 tokens, scaled softmax"),
        conv2d("flux-conv", 128, 128, 64, 3,
               description="FLUX-style 3x3 conv, NCHW 1x128x64x64, 128 out channels, pad 1"),
        # FLUX.1's autoencoder has ch=128, ch_mult=(1,2,4,4): its mid and low-resolution blocks run
        # 512-channel 3x3 convs; 64x64 is the latent grid of a 512x512 image.
        conv2d("flux-conv-full", 512, 512, 64, 3,
               description="FLUX.1 VAE decoder 3x3 conv at its widest (512->512 channels), 64x64"),
        gated_mlp("llama-mlp", 128, 512, 2048, silu=False,
                  description="Llama-style gated MLP (X·Wg * X·Wu)·Wd, no activation"),
        gated_mlp("llama-mlp-silu", 128, 512, 2048, silu=True,
                  description="the seed MLP with SiLU on the gate, as Llama computes it"),
        gated_mlp("llama-mlp-full", 128, 4096, 14336, silu=True,
                  description="Llama-3-8B MLP 4096->14336->4096 with SiLU, 128 tokens"),
    ]
