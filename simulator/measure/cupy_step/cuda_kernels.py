"""The hand-written CUDA kernels of the CuPy VGG16 step, and their compilation.

Holds:
- `IM2COL`, `COL2IM`, `MAXPOOL`, `MAXPOOL_BWD`, `DROPOUT`: CUDA bodies of CuPy
  ElementwiseKernels (one thread per element; raw arrays indexed as flat 1-D views).
- `compile_kernels(cp)`: every kernel of the step (those above, ReLU, the loss reductions and
  the fused SGD update) compiled by CuPy, as a namespace `k` (`k.im2col`, `k.sgd`, ...).

The numpy reference of each is in reference_ops.py; `checks.self_test` compares the two.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

IM2COL = r"""
const int ii = (int)i;
const int c = ii % C; const int r = ii / C;
const int w0 = r % W; const int t = r / W; const int h0 = t % H; const int n = t / H;
const long long base = (long long)r * 9 * C + c;
#pragma unroll
for (int kh = 0; kh < 3; ++kh) {
  const int h = h0 + kh - 1;
#pragma unroll
  for (int kw = 0; kw < 3; ++kw) {
    const int w = w0 + kw - 1;
    const bool in = h >= 0 && h < H && w >= 0 && w < W;
    col[base + (kh * 3 + kw) * C] =
        in ? x[((long long)(n * H + h) * W + w) * C + c] : T(0.0f);
  }
}
"""

COL2IM = r"""
const int ii = (int)i;
const int c = ii % C; const int r = ii / C;
const int w = r % W; const int t = r / W; const int h = t % H; const int n = t / H;
float acc = 0.0f;
#pragma unroll
for (int kh = 0; kh < 3; ++kh) {
  const int h0 = h - kh + 1;
  if (h0 < 0 || h0 >= H) continue;
#pragma unroll
  for (int kw = 0; kw < 3; ++kw) {
    const int w0 = w - kw + 1;
    if (w0 < 0 || w0 >= W) continue;
    acc += (float)gcol[((long long)(n * H + h0) * W + w0) * 9 * C + (kh * 3 + kw) * C + c];
  }
}
dx = T(acc);
"""

MAXPOOL = r"""
const int ii = (int)i;
const int Ho = H / 2, Wo = W / 2;
const int c = ii % C; int t = ii / C;
const int wo = t % Wo; t /= Wo; const int ho = t % Ho; const int n = t / Ho;
const long long b = ((long long)(n * H + 2 * ho) * W + 2 * wo) * C + c;
long long best = b; float v = (float)x[b];
const long long cand[3] = {b + C, b + (long long)W * C, b + (long long)W * C + C};
#pragma unroll
for (int k = 0; k < 3; ++k) {
  const float u = (float)x[cand[k]];
  if (u > v) { v = u; best = cand[k]; }
}
y = x[best];
idx = best;
"""

MAXPOOL_BWD = r"""
const int ii = (int)i;
const int Ho = H / 2, Wo = W / 2;
const int c = ii % C; int t = ii / C;
const int w = t % W; t /= W; const int h = t % H; const int n = t / H;
if (h / 2 >= Ho || w / 2 >= Wo) { dx = T(0.0f); }
else {
  const long long o = ((long long)(n * Ho + h / 2) * Wo + w / 2) * C + c;
  dx = (idx[o] == (long long)i) ? g[o] : T(0.0f);
}
"""

DROPOUT = r"""
unsigned int hsh = (unsigned int)i * 0x9E3779B1u + seed * 0x85EBCA77u;
hsh ^= hsh >> 15; hsh *= 0x2C1B3C6Du; hsh ^= hsh >> 12; hsh *= 0x297A2D39u; hsh ^= hsh >> 15;
const float u = (float)(hsh >> 8) * (1.0f / 16777216.0f);
const bool keep = u >= p;
mask = keep;
y = keep ? T((float)x * scale) : T(0.0f);
"""


def _layer_kernels(cp: Any) -> dict[str, Any]:
    """im2col, col2im, max pooling, ReLU and dropout, forward and backward."""
    ek = cp.ElementwiseKernel
    return {
        "im2col": ek("raw T x, int32 H, int32 W, int32 C", "raw T col", IM2COL, "vgg_im2col"),
        "col2im": ek("raw T gcol, int32 H, int32 W, int32 C", "T dx", COL2IM, "vgg_col2im"),
        "maxpool": ek("raw T x, int32 H, int32 W, int32 C", "T y, int64 idx", MAXPOOL,
                      "vgg_maxpool"),
        "maxpool_bwd": ek("raw T g, raw int64 idx, int32 H, int32 W, int32 C", "T dx",
                          MAXPOOL_BWD, "vgg_maxpool_bwd"),
        "relu": ek("T x", "T y", "y = ((float)x > 0.0f) ? x : T(0.0f)", "vgg_relu"),
        "relu_bwd": ek("T y, T gin", "T g", "g = ((float)y > 0.0f) ? gin : T(0.0f)",
                       "vgg_relu_bwd"),
        "dropout": ek("T x, uint32 seed, float32 p, float32 scale", "T y, bool mask", DROPOUT,
                      "vgg_dropout"),
        "dropout_bwd": ek("T gin, bool mask, float32 scale", "T g",
                          "g = mask ? T((float)gin * scale) : T(0.0f)", "vgg_dropout_bwd"),
    }


def _loss_kernels(cp: Any) -> dict[str, Any]:
    """Softmax cross-entropy: row max, row sum-exp, per-row loss, and its backward."""
    return {
        "rowmax": cp.ReductionKernel("T x", "float32 m", "(float)x", "max(a, b)", "m = a",
                                     "-3.402823466e+38f", "vgg_rowmax", reduce_type="float"),
        "rowsumexp": cp.ReductionKernel("T x, float32 m", "float32 s", "expf((float)x - m)",
                                        "a + b", "s = a", "0.0f", "vgg_rowsumexp",
                                        reduce_type="float"),
        "rowloss": cp.ElementwiseKernel(
            "float32 m, float32 s, int32 label, raw T x, int32 K", "float32 lse, float32 li",
            "lse = m + logf(s); li = lse - (float)x[(long long)i * K + label];", "vgg_rowloss"),
        "loss_bwd": cp.ElementwiseKernel(
            "raw T x, raw float32 lse, raw int32 label, int32 K, float32 invn", "U g",
            "const int n = (int)(i / K); const int k = (int)(i - (long long)n * K);"
            "const float q = expf((float)x[i] - lse[n]) - (k == label[n] ? 1.0f : 0.0f);"
            "g = U(q * invn);", "vgg_loss_bwd"),
    }


def compile_kernels(cp: Any) -> SimpleNamespace:
    """Every CuPy kernel of the step (compiled lazily by CuPy on first launch)."""
    sgd = cp.ElementwiseKernel("T g, T w_in, T b_in, float32 lr, float32 mu", "T w, T buf",
                               "const float nb = mu * b_in + g; buf = nb; w = w_in - lr * nb;",
                               "vgg_sgd")
    return SimpleNamespace(**_layer_kernels(cp), **_loss_kernels(cp), sgd=sgd)
