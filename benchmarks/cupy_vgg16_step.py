"""Ground truth for the im2col graph: a real VGG16 training step built only from CuPy kernels.

Run on a machine with CuPy and a CUDA GPU (not imported by the tests):

    python benchmarks/cupy_vgg16_step.py --out measurements/NAME-cupy-vgg16-step.json

The step is the graph that `build_graph(load_model("vgg16"), batch, "train", precision,
conv_algorithm="im2col")` describes, op for op and in the same order (`--check-graph`
compares the two where the simulator is importable): per convolution an im2col kernel
writing the (N*H*W, 9*C) patch matrix, a cuBLAS GEMM with the weights and a bias-add
kernel; in-place ReLU; 2x2 max pooling that keeps int64 argmax indices; the 7x7 adaptive
average pool (an identity on a 7x7 input) as a copy kernel; flatten (a view); linear layers
(GEMM, then a bias add); dropout p=0.5 with a bool mask; softmax cross-entropy in fp32; the
backward pass in reverse order (conv: input-gradient GEMM then a col2im gather kernel,
skipped for the first conv; im2col recomputed for the weight-gradient GEMM; bias gradient as
a GEMM with a ones vector); SGD with momentum 0.9 on fp32 master weights, one fused kernel
over a flat parameter buffer. Activations are NHWC, so every GEMM output is already the next
layer's input layout and no transposes are needed.

Precision "fp32": everything float32; cuBLAS runs plain FP32 (CUPY_TF32 unset, no TF32).
Precision "fp16": mixed precision as the simulator's fp16 mode counts it: the fp32 input is
cast once, each layer's fp32 master weights are cast to an fp16 copy every step, activations
and GEMMs are fp16 (tensor cores, fp32 accumulation), the loss is computed in fp32, each
layer's fp16 weight gradient is cast back to fp32, and the optimizer runs in fp32. There is
no GradScaler: no loss scaling, unscale or inf check (the simulator counts those two passes).

Timing: random inputs already on the GPU; warm-up steps, then back-to-back steps with a CUDA
event between steps (as benchmarks/torch_vgg16.py does), median and min; per-phase times
(forward incl. loss, backward, update) from events inside each step; and one extra profiled
step with an event after every op, queued behind a spin kernel, so each op of the graph has
a measured time under its simulator name. Before timing, each configuration trains 5 steps
on its fixed batch and records whether the loss went down (a check that backward is wired
right); a separate 5-step check runs at batch 2 in fp32.

The array module can be numpy (`--backend numpy`, with `--image` to shrink the input) to
check shapes, the graph and the loss locally without a GPU.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from simulator.measure.provenance import (
    cpu_info,
    gpu_info,
    gpu_software,
    numpy_software,
    utc_now,
)
from simulator.report.atomic import write_json_atomic

SCHEMA = "simulator.cupy-steps/1"

# workloads/models/vgg16.yaml, spelled out here because the device machine lacks pydantic
# (which workloads.model_def needs); --check-graph compares the two.
VGG16: list[tuple[str, str, int]] = []
for _stage, (_width, _convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), 1):
    for _j in range(1, _convs + 1):
        VGG16 += [(f"conv{_stage}_{_j}", "conv2d", _width), (f"relu{_stage}_{_j}", "relu", 0)]
    VGG16.append((f"pool{_stage}", "maxpool2d", 2))
VGG16 += [("avgpool", "adaptive_avgpool2d", 7), ("flatten", "flatten", 0),
          ("fc6", "linear", 4096), ("relu6", "relu", 0), ("drop6", "dropout", 0),
          ("fc7", "linear", 4096), ("relu7", "relu", 0), ("drop7", "dropout", 0),
          ("fc8", "linear", 1000)]
DROPOUT_P = 0.5
MOMENTUM = 0.9
NOTES = [
    ("Activations NHWC; im2col is one kernel per conv (one thread per input element, writing "
     "its 9 taps of the (N*H*W, 9*C) patch matrix, columns ordered (kh, kw, c)); col2im is one "
     "gather kernel per conv (one thread per input element summing its 9 patch gradients)."),
    ("GEMMs via cupy.dot -> cublasGemmEx: fp32 with CUBLAS_COMPUTE_32F (CUPY_TF32 unset: no "
     "TF32), fp16 with fp32 accumulation on tensor cores; transposed operands by cuBLAS flags, "
     "no copies."),
    ("Conv backward-data is the explicit-lowering GEMM grad_cols = grad_out (N*H*W x Cout) @ "
     "W (Cout x 9*Cin), then col2im; the simulator lists this op with the implicit-GEMM dgrad "
     "shape (M=N*H*W, N=Cin, K=9*Cout): same FLOPs, different shape."),
    ("Conv and linear bias gradients are GEMMs with a ones vector (Caffe's way), timed under "
     "the simulator's .bwd_weight.epilogue (conv) or inside .bwd_weight (linear)."),
    ("Linear layers: GEMM then a separate bias-add kernel, both timed under the simulator's "
     "single fcN.fwd op (the simulator assumes the bias fused into the GEMM, as addmm does)."),
    ("Loss: forward is row max, row sum-exp, per-row loss and a mean (about 5 small kernels) "
     "under loss.fwd; backward is one kernel under loss.bwd (the simulator counts 2 and 2)."),
    ("Optimizer: SGD momentum 0.9, no weight decay, one fused elementwise kernel over a flat "
     "fp32 buffer of all 138M parameters (PyTorch's foreach path, which the simulator counts, "
     "launches 3 ops in several chunks). Gradients are overwritten each step (beta=0), so "
     "there is no zero_grad kernel."),
    ("fp16: no GradScaler: loss scaling, unscale and the inf/nan check are skipped (the "
     "simulator's fp16 mode counts 2 extra passes over the fp32 gradients in optimizer.step)."),
    ("Dropout: one kernel that draws a counter-based hash per element and writes the output "
     "and a bool mask (PyTorch's fused philox kernel does the same work)."),
    ("No host-to-device input copy: the batch is on the GPU already (the simulator's "
     "input.h2d is prefetched and overlaps the step, so it is not in its step time either)."),
    ("Timed steps run back to back with a CUDA event between consecutive steps (the host may "
     "run ahead); host_enqueue_s is the host time to issue one step, which shows whether "
     "Python launch overhead could be the limit."),
]


# --------------------------------------------------------------------------------------------
# Kernels: numpy reference implementations, and CuPy kernels with the same meaning.
# --------------------------------------------------------------------------------------------


def _hash_uniform_np(n: int, seed: int) -> np.ndarray:
    """The dropout kernel's counter-based hash, in numpy uint32 arithmetic."""
    with np.errstate(over="ignore"):
        h = np.arange(n, dtype=np.uint32) * np.uint32(0x9E3779B1)
        h += np.uint32((seed * 0x85EBCA77) & 0xFFFFFFFF)
        h ^= h >> np.uint32(15)
        h *= np.uint32(0x2C1B3C6D)
        h ^= h >> np.uint32(12)
        h *= np.uint32(0x297A2D39)
        h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)


class NumpyOps:
    """The kernels of the step on numpy (reference and local test)."""

    name = "numpy"

    def __init__(self) -> None:
        self.xp = np

    # --- timing ---
    def stamp(self) -> Any:
        return time.perf_counter()

    def elapsed(self, a: Any, b: Any) -> float:
        return float(b - a)

    def sync(self) -> None:
        pass

    def spin(self, seconds: float) -> None:
        pass

    def pool_bytes(self) -> int | None:
        return None

    def release(self) -> None:
        pass

    # --- kernels ---
    def im2col(self, x: Any, cols: Any) -> None:
        n, h, w, c = x.shape
        xp = np.zeros((n, h + 2, w + 2, c), x.dtype)
        xp[:, 1:-1, 1:-1, :] = x
        view = cols.reshape(n, h, w, 9, c)
        for kh in range(3):
            for kw in range(3):
                view[:, :, :, kh * 3 + kw, :] = xp[:, kh:kh + h, kw:kw + w, :]

    def col2im(self, gcols: Any, shape: tuple[int, ...]) -> Any:
        n, h, w, c = shape
        g = gcols.reshape(n, h, w, 9, c).astype(np.float32)
        dxp = np.zeros((n, h + 2, w + 2, c), np.float32)
        for kh in range(3):
            for kw in range(3):
                dxp[:, kh:kh + h, kw:kw + w, :] += g[:, :, :, kh * 3 + kw, :]
        return dxp[:, 1:-1, 1:-1, :].astype(gcols.dtype)

    def maxpool(self, x: Any) -> tuple[Any, Any]:
        n, h, w, c = x.shape
        ho, wo = h // 2, w // 2
        xr = x[:, :2 * ho, :2 * wo, :].reshape(n, ho, 2, wo, 2, c).transpose(0, 1, 3, 5, 2, 4)
        xr = xr.reshape(n, ho, wo, c, 4)
        arg = xr.argmax(axis=-1)
        y = np.take_along_axis(xr, arg[..., None], axis=-1)[..., 0]
        ni, hi, wi, ci = np.indices((n, ho, wo, c), dtype=np.int64)
        idx = ((ni * h + 2 * hi + arg // 2) * w + 2 * wi + arg % 2) * c + ci
        return np.ascontiguousarray(y), idx.astype(np.int64)

    def maxpool_bwd(self, g: Any, idx: Any, shape: tuple[int, ...]) -> Any:
        dx = np.zeros(math.prod(shape), g.dtype)
        dx[idx.ravel()] = g.ravel()
        return dx.reshape(shape)

    def relu_(self, x: Any) -> None:
        np.maximum(x, 0, out=x)

    def relu_bwd_(self, y: Any, g: Any) -> None:
        g[y <= 0] = 0

    def dropout(self, x: Any, seed: int, p: float) -> tuple[Any, Any]:
        mask = (_hash_uniform_np(x.size, seed) >= np.float32(p)).reshape(x.shape)
        y = (x.astype(np.float32) * mask * np.float32(1.0 / (1.0 - p))).astype(x.dtype)
        return y, mask

    def dropout_bwd_(self, g: Any, mask: Any, p: float) -> None:
        g[...] = (g.astype(np.float32) * mask * np.float32(1.0 / (1.0 - p))).astype(g.dtype)

    def copy(self, x: Any) -> Any:
        return x.copy()

    def cast(self, dst: Any, src: Any) -> None:
        np.copyto(dst, src, casting="same_kind")

    def loss_fwd(self, logits: Any, labels: Any) -> tuple[Any, Any]:
        x = logits.astype(np.float32)
        m = x.max(axis=1)
        s = np.exp(x - m[:, None]).sum(axis=1)
        lse = m + np.log(s)
        rows = lse - x[np.arange(x.shape[0]), labels]
        return np.float32(rows.mean()), lse.astype(np.float32)

    def loss_bwd(self, logits: Any, labels: Any, lse: Any, out: Any) -> None:
        n = logits.shape[0]
        p = np.exp(logits.astype(np.float32) - lse[:, None])
        p[np.arange(n), labels] -= 1.0
        out[...] = (p / np.float32(n)).astype(out.dtype)

    def sgd_(self, w: Any, g: Any, buf: Any, lr: float, mu: float) -> None:
        buf *= np.float32(mu)
        buf += g
        w -= np.float32(lr) * buf

    def adaptive_avgpool(self, x: Any, out: int) -> Any:
        """General adaptive average pooling (PyTorch's bins); only for shrunken test inputs."""
        xp = self.xp
        n, h, w, c = x.shape
        y = xp.empty((n, out, out, c), x.dtype)
        for i in range(out):
            h0, h1 = (i * h) // out, -((-(i + 1) * h) // out)
            for j in range(out):
                w0, w1 = (j * w) // out, -((-(j + 1) * w) // out)
                y[:, i, j, :] = x[:, h0:h1, w0:w1, :].mean(axis=(1, 2))
        return y

    def adaptive_avgpool_bwd(self, g: Any, shape: tuple[int, ...]) -> Any:
        xp = self.xp
        _, h, w, _ = shape
        out = g.shape[1]
        dx = xp.zeros(shape, xp.float32)
        for i in range(out):
            h0, h1 = (i * h) // out, -((-(i + 1) * h) // out)
            for j in range(out):
                w0, w1 = (j * w) // out, -((-(j + 1) * w) // out)
                dx[:, h0:h1, w0:w1, :] += g[:, i:i + 1, j:j + 1, :].astype(xp.float32) / (
                    (h1 - h0) * (w1 - w0))
        return dx.astype(g.dtype)


_IM2COL = r"""
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

_COL2IM = r"""
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

_MAXPOOL = r"""
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

_MAXPOOL_BWD = r"""
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

_DROPOUT = r"""
unsigned int hsh = (unsigned int)i * 0x9E3779B1u + seed * 0x85EBCA77u;
hsh ^= hsh >> 15; hsh *= 0x2C1B3C6Du; hsh ^= hsh >> 12; hsh *= 0x297A2D39u; hsh ^= hsh >> 15;
const float u = (float)(hsh >> 8) * (1.0f / 16777216.0f);
const bool keep = u >= p;
mask = keep;
y = keep ? T((float)x * scale) : T(0.0f);
"""


class CupyOps(NumpyOps):
    """The same kernels as CuPy ElementwiseKernels, cuBLAS and CuPy's own ufuncs.

    Raw array arguments are passed as 1-D views: CuPy's raw indexing of an n-D array
    unravels a flat index with a division per dimension, a 1-D one is a plain offset."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy as cp

        from simulator.measure.timing import GpuTimer

        self.xp = self.cp = cp
        self._timer = GpuTimer(cp, quick=False)  # for its spin kernel
        ek = cp.ElementwiseKernel
        self.k_im2col = ek("raw T x, int32 H, int32 W, int32 C", "raw T col", _IM2COL,
                           "vgg_im2col")
        self.k_col2im = ek("raw T gcol, int32 H, int32 W, int32 C", "T dx", _COL2IM,
                           "vgg_col2im")
        self.k_maxpool = ek("raw T x, int32 H, int32 W, int32 C", "T y, int64 idx", _MAXPOOL,
                            "vgg_maxpool")
        self.k_maxpool_bwd = ek("raw T g, raw int64 idx, int32 H, int32 W, int32 C", "T dx",
                                _MAXPOOL_BWD, "vgg_maxpool_bwd")
        self.k_relu = ek("T x", "T y", "y = ((float)x > 0.0f) ? x : T(0.0f)", "vgg_relu")
        self.k_relu_bwd = ek("T y, T gin", "T g", "g = ((float)y > 0.0f) ? gin : T(0.0f)",
                             "vgg_relu_bwd")
        self.k_dropout = ek("T x, uint32 seed, float32 p, float32 scale", "T y, bool mask",
                            _DROPOUT, "vgg_dropout")
        self.k_dropout_bwd = ek("T gin, bool mask, float32 scale", "T g",
                                "g = mask ? T((float)gin * scale) : T(0.0f)", "vgg_dropout_bwd")
        self.k_rowmax = cp.ReductionKernel("T x", "float32 m", "(float)x", "max(a, b)", "m = a",
                                           "-3.402823466e+38f", "vgg_rowmax",
                                           reduce_type="float")
        self.k_rowsumexp = cp.ReductionKernel("T x, float32 m", "float32 s", "expf((float)x - m)",
                                              "a + b", "s = a", "0.0f", "vgg_rowsumexp",
                                              reduce_type="float")
        self.k_rowloss = ek("float32 m, float32 s, int32 label, raw T x, int32 K",
                            "float32 lse, float32 li",
                            "lse = m + logf(s); li = lse - (float)x[(long long)i * K + label];",
                            "vgg_rowloss")
        self.k_loss_bwd = ek(
            "raw T x, raw float32 lse, raw int32 label, int32 K, float32 invn", "U g",
            "const int n = (int)(i / K); const int k = (int)(i - (long long)n * K);"
            "const float q = expf((float)x[i] - lse[n]) - (k == label[n] ? 1.0f : 0.0f);"
            "g = U(q * invn);", "vgg_loss_bwd")
        self.k_sgd = ek("T g, T w_in, T b_in, float32 lr, float32 mu", "T w, T buf",
                        "const float nb = mu * b_in + g; buf = nb; w = w_in - lr * nb;",
                        "vgg_sgd")

    # --- timing ---
    def stamp(self) -> Any:
        ev = self.cp.cuda.Event()
        ev.record()
        return ev

    def elapsed(self, a: Any, b: Any) -> float:
        return self.cp.cuda.get_elapsed_time(a, b) / 1e3

    def sync(self) -> None:
        self.cp.cuda.get_current_stream().synchronize()

    def spin(self, seconds: float) -> None:
        self._timer._spin(seconds)

    def pool_bytes(self) -> int | None:
        return int(self.cp.get_default_memory_pool().total_bytes())

    def release(self) -> None:
        self.sync()
        self.cp.get_default_memory_pool().free_all_blocks()

    # --- kernels ---
    def im2col(self, x: Any, cols: Any) -> None:
        _, h, w, c = x.shape
        i32 = np.int32
        self.k_im2col(x.reshape(-1), i32(h), i32(w), i32(c), cols.reshape(-1), size=x.size)

    def col2im(self, gcols: Any, shape: tuple[int, ...]) -> Any:
        _, h, w, c = shape
        dx = self.cp.empty(shape, gcols.dtype)
        self.k_col2im(gcols.reshape(-1), np.int32(h), np.int32(w), np.int32(c), dx)
        return dx

    def maxpool(self, x: Any) -> tuple[Any, Any]:
        n, h, w, c = x.shape
        y = self.cp.empty((n, h // 2, w // 2, c), x.dtype)
        idx = self.cp.empty((n, h // 2, w // 2, c), self.cp.int64)
        self.k_maxpool(x.reshape(-1), np.int32(h), np.int32(w), np.int32(c), y, idx)
        return y, idx

    def maxpool_bwd(self, g: Any, idx: Any, shape: tuple[int, ...]) -> Any:
        _, h, w, c = shape
        dx = self.cp.empty(shape, g.dtype)
        self.k_maxpool_bwd(g.reshape(-1), idx.reshape(-1), np.int32(h), np.int32(w),
                           np.int32(c), dx)
        return dx

    def relu_(self, x: Any) -> None:
        self.k_relu(x, x)

    def relu_bwd_(self, y: Any, g: Any) -> None:
        self.k_relu_bwd(y, g, g)

    def dropout(self, x: Any, seed: int, p: float) -> tuple[Any, Any]:
        y = self.cp.empty_like(x)
        mask = self.cp.empty(x.shape, self.cp.bool_)
        self.k_dropout(x, np.uint32(seed & 0xFFFFFFFF), np.float32(p),
                       np.float32(1.0 / (1.0 - p)), y, mask)
        return y, mask

    def dropout_bwd_(self, g: Any, mask: Any, p: float) -> None:
        self.k_dropout_bwd(g, mask, np.float32(1.0 / (1.0 - p)), g)

    def cast(self, dst: Any, src: Any) -> None:
        self.cp.copyto(dst, src, casting="same_kind")

    def loss_fwd(self, logits: Any, labels: Any) -> tuple[Any, Any]:
        m = self.k_rowmax(logits, axis=1)
        s = self.k_rowsumexp(logits, m[:, None], axis=1)
        lse = self.cp.empty(m.shape, self.cp.float32)
        rows = self.cp.empty(m.shape, self.cp.float32)
        self.k_rowloss(m, s, labels, logits.reshape(-1), np.int32(logits.shape[1]), lse, rows)
        return rows.mean(), lse

    def loss_bwd(self, logits: Any, labels: Any, lse: Any, out: Any) -> None:
        n, k = logits.shape
        self.k_loss_bwd(logits.reshape(-1), lse, labels, np.int32(k), np.float32(1.0 / n), out)

    def sgd_(self, w: Any, g: Any, buf: Any, lr: float, mu: float) -> None:
        self.k_sgd(g, w, buf, np.float32(lr), np.float32(mu), w, buf)


# --------------------------------------------------------------------------------------------
# The model and its step
# --------------------------------------------------------------------------------------------


class Param:
    """One layer's weight (out, fan_in) and bias (out,) inside the flat buffers."""

    def __init__(self, offset: int, out: int, fan_in: int) -> None:
        self.offset, self.out, self.fan_in = offset, out, fan_in
        self.wsize = out * fan_in
        self.size = self.wsize + out

    def slice(self, flat: Any) -> Any:
        return flat[self.offset:self.offset + self.size]

    def weight(self, flat: Any) -> Any:
        return flat[self.offset:self.offset + self.wsize].reshape(self.out, self.fan_in)

    def bias(self, flat: Any) -> Any:
        return flat[self.offset + self.wsize:self.offset + self.size]


class VGGStep:
    """Parameters, buffers and one training step of VGG16 on `ops`' array module."""

    def __init__(self, ops: NumpyOps, batch: int, precision: str, image: int, lr: float,
                 seed: int = 0) -> None:
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be fp32 or fp16, got {precision}")
        self.ops, self.xp, self.batch, self.lr = ops, ops.xp, batch, lr
        self.mixed = precision == "fp16"
        xp = self.xp
        self.act = xp.float16 if self.mixed else xp.float32
        self.params: dict[str, Param] = {}
        c, h, offset = 3, image, 0
        for name, kind, arg in VGG16:
            if kind == "conv2d":
                self.params[name] = Param(offset, arg, 9 * c)
                c = arg
            elif kind == "maxpool2d":
                h //= 2
            elif kind == "adaptive_avgpool2d":
                h = arg
            elif kind == "linear":
                fan_in = c * h * h if name == "fc6" else c
                self.params[name] = Param(offset, arg, fan_in)
                c = arg
            if name in self.params:
                offset += self.params[name].size
        self.n_params = offset
        rng_seed = 1234 + seed
        self.master = xp.zeros(offset, xp.float32)
        rng = np.random.default_rng(rng_seed)
        if xp is not np:
            xp.random.seed(rng_seed)

        def normal(count: int) -> Any:
            if xp is np:
                return rng.standard_normal(count, dtype=np.float32)
            return xp.random.standard_normal(count, dtype=xp.float32)
        for name, p in self.params.items():  # torchvision's init: He (convs), N(0, 0.01)
            std = 0.01 if name.startswith("fc") else math.sqrt(2.0 / p.fan_in)
            p.weight(self.master)[...] = normal(p.wsize).reshape(p.out, p.fan_in) * np.float32(
                std)
        self.grad32 = xp.zeros(offset, xp.float32)
        self.momentum = xp.zeros(offset, xp.float32)
        self.w16 = xp.zeros(offset, xp.float16) if self.mixed else None
        self.g16 = xp.zeros(offset, xp.float16) if self.mixed else None
        self.x = normal(batch * image * image * 3).reshape(batch, image, image, 3)
        if xp is np:
            self.labels = rng.integers(0, 1000, batch, dtype=np.int32)
        else:
            self.labels = xp.random.randint(0, 1000, batch, dtype=xp.int32)
        self._ones: dict[Any, Any] = {}
        self.steps_done = 0

    def ones(self, n: int) -> Any:
        key = (n, self.act)
        if key not in self._ones:
            self._ones[key] = self.xp.ones(n, self.act)
        return self._ones[key]

    def wflat(self) -> Any:
        return self.w16 if self.mixed else self.master

    def gflat(self) -> Any:
        return self.g16 if self.mixed else self.grad32

    def step(self, marks: list | None = None, phases: list | None = None) -> Any:
        """One training step; appends (op name, stamp) to `marks` after each op if given,
        and a stamp after the forward pass and after the backward pass to `phases`."""
        ops, xp = self.ops, self.xp

        def mark(name: str) -> None:
            if marks is not None:
                marks.append((name, ops.stamp()))

        wflat, gflat = self.wflat(), self.gflat()
        saved: dict[str, Any] = {}
        seed = self.steps_done * 7919 + 17
        if self.mixed:
            h = xp.empty(self.x.shape, self.act)
            ops.cast(h, self.x)
            mark("input.cast")
        else:
            h = self.x
        n = self.batch
        # ---------------- forward ----------------
        for name, kind, _arg in VGG16:
            p = self.params.get(name)
            if p is not None and self.mixed:
                ops.cast(p.slice(self.w16), p.slice(self.master))
                mark(f"{name}.weight_cast")
            if kind == "conv2d":
                assert p is not None
                _, hh, ww, c = h.shape
                cols = xp.empty((n * hh * ww, 9 * c), self.act)
                ops.im2col(h, cols)
                mark(f"{name}.fwd.prologue")
                y = xp.dot(cols, p.weight(wflat).T)
                del cols
                mark(f"{name}.fwd")
                y += p.bias(wflat)
                mark(f"{name}.fwd.epilogue")
                saved[name] = h
                h = y.reshape(n, hh, ww, p.out)
            elif kind == "relu":
                ops.relu_(h)
                mark(f"{name}.fwd")
                saved[name] = h
            elif kind == "maxpool2d":
                saved[name] = (h.shape,)
                h, idx = ops.maxpool(h)
                saved[name] += (idx,)
                mark(f"{name}.fwd")
            elif kind == "adaptive_avgpool2d":
                saved[name] = h.shape
                h = ops.copy(h) if h.shape[1:3] == (7, 7) else ops.adaptive_avgpool(h, 7)
                mark(f"{name}.fwd")
            elif kind == "flatten":
                saved[name] = h.shape
                h = h.reshape(n, -1)
            elif kind == "linear":
                assert p is not None
                saved[name] = h
                h = xp.dot(h, p.weight(wflat).T)
                h += p.bias(wflat)
                mark(f"{name}.fwd")
            elif kind == "dropout":
                h, saved[name] = ops.dropout(h, seed + len(saved), DROPOUT_P)
                mark(f"{name}.fwd")
        logits = h
        loss, lse = ops.loss_fwd(logits, self.labels)
        mark("loss.fwd")
        if phases is not None:
            phases.append(ops.stamp())
        # ---------------- backward ----------------
        g = xp.empty(logits.shape, self.act)
        ops.loss_bwd(logits, self.labels, lse, g)
        mark("loss.bwd")
        del logits, h
        first = VGG16[0][0]
        for name, kind, _arg in reversed(VGG16):
            p = self.params.get(name)
            if kind == "linear":
                assert p is not None
                x_in = saved.pop(name)
                gx = xp.dot(g, p.weight(wflat))
                mark(f"{name}.bwd_data")
                xp.dot(g.T, x_in, out=p.weight(gflat))
                xp.dot(self.ones(n), g, out=p.bias(gflat))
                mark(f"{name}.bwd_weight")
                g = gx
            elif kind == "dropout":
                ops.dropout_bwd_(g, saved.pop(name), DROPOUT_P)
                mark(f"{name}.bwd_data")
            elif kind == "relu":
                ops.relu_bwd_(saved.pop(name), g)
                mark(f"{name}.bwd_data")
            elif kind == "flatten":
                g = g.reshape(saved.pop(name))
            elif kind == "adaptive_avgpool2d":
                shape = saved.pop(name)
                g = ops.copy(g) if tuple(shape[1:3]) == (7, 7) else ops.adaptive_avgpool_bwd(
                    g, shape)
                mark(f"{name}.bwd_data")
            elif kind == "maxpool2d":
                shape, idx = saved.pop(name)
                g = ops.maxpool_bwd(g, idx, shape)
                mark(f"{name}.bwd_data")
            elif kind == "conv2d":
                assert p is not None
                x_in = saved.pop(name)
                g2 = g.reshape(-1, p.out)
                gx = None
                if name != first:
                    gcols = xp.dot(g2, p.weight(wflat))
                    mark(f"{name}.bwd_data")
                    gx = ops.col2im(gcols, x_in.shape)
                    del gcols
                    mark(f"{name}.bwd_data.epilogue")
                cols = xp.empty((g2.shape[0], p.fan_in), self.act)
                ops.im2col(x_in, cols)
                mark(f"{name}.bwd_weight.prologue")
                xp.dot(g2.T, cols, out=p.weight(gflat))
                del cols
                mark(f"{name}.bwd_weight")
                xp.dot(self.ones(g2.shape[0]), g2, out=p.bias(gflat))
                mark(f"{name}.bwd_weight.epilogue")
                g = gx
            if p is not None and self.mixed:
                ops.cast(p.slice(self.grad32), p.slice(self.g16))
                mark(f"{name}.grad_cast")
        if phases is not None:
            phases.append(ops.stamp())
        # ---------------- update ----------------
        ops.sgd_(self.master, self.grad32, self.momentum, self.lr, MOMENTUM)
        mark("optimizer.step")
        self.steps_done += 1
        return loss


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


def _finite(value: float) -> float | str:
    """A loss for JSON: rounded, or its name where it is not finite (nan, inf)."""
    return round(value, 5) if math.isfinite(value) else str(value)


def loss_check(model: VGGStep, steps: int = 5) -> dict[str, Any]:
    losses = [float(model.step()) for _ in range(steps)]
    finite = all(math.isfinite(v) for v in losses)
    return {"losses": [_finite(v) for v in losses], "lr": model.lr,
            "loss_decreased": bool(finite and losses[-1] < losses[0])}


def time_config(ops: NumpyOps, batch: int, precision: str, image: int, lr: float,
                warmup: int, steps: int) -> dict[str, Any]:
    record: dict[str, Any] = {"model": "vgg16", "mode": "train", "batch": batch,
                              "precision": precision, "conv_algorithm": "im2col",
                              "image": image, "backend": ops.name}
    ops.release()
    model = VGGStep(ops, batch, precision, image, lr)
    check = loss_check(model)
    record.update(loss_decreased=check["loss_decreased"], loss_check=check)
    for _ in range(warmup):
        model.step()
    ops.sync()
    start = ops.stamp()
    rows, host = [], []
    loss = None
    for _ in range(steps):
        t0 = time.perf_counter()
        phases: list = []
        loss = model.step(phases=phases)
        end = ops.stamp()
        host.append(time.perf_counter() - t0)
        rows.append((phases[0], phases[1], end))
    ops.sync()
    times, fwd, bwd, upd = [], [], [], []
    prev = start
    for f, b, e in rows:
        times.append(ops.elapsed(prev, e))
        fwd.append(ops.elapsed(prev, f))
        bwd.append(ops.elapsed(f, b))
        upd.append(ops.elapsed(b, e))
        prev = e
    record.update(
        median_s=statistics.median(times), min_s=min(times), reps=len(times),
        warmup_steps=warmup, times_s=[float(f"{t:.6g}") for t in times],
        phases_median_s={"forward": statistics.median(fwd), "backward": statistics.median(bwd),
                         "update": statistics.median(upd)},
        host_enqueue_median_s=statistics.median(host),
        final_loss=_finite(float(loss)) if loss is not None else None,
    )
    # one profiled step: an event after every op, the launches queued behind a spin kernel
    ops.sync()
    ops.spin(min(0.5, 2.0 * max(host) + 0.01))
    marks: list = [("start", ops.stamp())]
    model.step(marks=marks)
    ops.sync()
    op_times = {name: ops.elapsed(marks[i][1], t) for i, (name, t) in enumerate(marks[1:])}
    record["profiled_step"] = {"ops_s": {k: float(f"{v:.6g}") for k, v in op_times.items()},
                               "total_s": sum(op_times.values()), "op_count": len(op_times)}
    pool = ops.pool_bytes()
    if pool is not None:
        record["memory_pool_bytes"] = pool
    del model
    ops.release()
    return record


def check_graph(batch: int, precision: str, image: int) -> list[str]:
    """Problems where this step's ops differ from the simulator's graph (empty: none)."""
    from workloads.builder import build_graph
    from workloads.model_def import load_model

    model = load_model("vgg16")
    problems = []
    theirs = [(layer.name, layer.kind) for layer in model.layers]
    if theirs != [(name, kind) for name, kind, _ in VGG16]:
        problems.append(f"layer list differs from vgg16.yaml: {theirs}")
    graph = build_graph(model, batch, "train", precision, conv_algorithm="im2col")
    expected = [op.name for op in graph.ops() if op.name != "input.h2d"]
    step = VGGStep(NumpyOps(), batch, precision, image, lr=0.0)
    marks: list = []
    step.step(marks=marks)
    ours = [name for name, _ in marks]
    if ours != expected:
        missing = [x for x in expected if x not in ours]
        extra = [x for x in ours if x not in expected]
        problems.append(f"{precision}: op sequence differs: missing {missing}, extra {extra}")
        for i, (a, b) in enumerate(zip(ours, expected, strict=False)):
            if a != b:
                problems.append(f"{precision}: first difference at {i}: ours {a}, graph {b}")
                break
    if step.n_params != graph.params and image == 224:
        problems.append(f"params {step.n_params} != graph {graph.params}")
    return problems


def self_test(ops: CupyOps) -> dict[str, Any]:
    """Each CuPy kernel against the numpy reference on small random shapes."""
    cp, ref = ops.cp, NumpyOps()
    rng = np.random.default_rng(5)
    results: dict[str, Any] = {}

    def close(name: str, got: Any, want: Any, tol: float) -> None:
        got_h = cp.asnumpy(got).astype(np.float64)
        want_h = np.asarray(want).astype(np.float64)
        err = float(np.max(np.abs(got_h - want_h))) if want_h.size else 0.0
        results[name] = {"max_abs_err": err, "ok": bool(err <= tol)}

    for dt, tol in ((np.float32, 1e-5), (np.float16, 2e-2)):
        tag = np.dtype(dt).name
        try:
            _self_test_dtype(ops, ref, rng, dt, tag, tol, close)
        except Exception as exc:  # noqa: BLE001 - record which kernel failed, go on
            results[f"error.{tag}"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    results["all_ok"] = all(v["ok"] for v in results.values() if isinstance(v, dict))
    return results


def _self_test_dtype(ops: CupyOps, ref: NumpyOps, rng: Any, dt: Any, tag: str, tol: float,
                     close: Any) -> None:
    cp = ops.cp
    x = rng.standard_normal((2, 6, 6, 5)).astype(dt)
    cols_ref = np.empty((72, 45), dt)
    ref.im2col(x, cols_ref)
    cols = cp.empty((72, 45), dt)
    ops.im2col(cp.asarray(x), cols)
    close(f"im2col.{tag}", cols, cols_ref, 0.0)
    gc = rng.standard_normal((72, 45)).astype(dt)
    close(f"col2im.{tag}", ops.col2im(cp.asarray(gc), x.shape), ref.col2im(gc, x.shape),
          tol)
    y, idx = ops.maxpool(cp.asarray(x))
    y_ref, idx_ref = ref.maxpool(x)
    close(f"maxpool.{tag}", y, y_ref, 0.0)
    close(f"maxpool_idx.{tag}", idx, idx_ref, 0.0)
    gy = rng.standard_normal(y_ref.shape).astype(dt)
    close(f"maxpool_bwd.{tag}", ops.maxpool_bwd(cp.asarray(gy), idx, x.shape),
          ref.maxpool_bwd(gy, idx_ref, x.shape), 0.0)
    xd, md = ops.dropout(cp.asarray(x), 99, 0.5)
    xr, mr = ref.dropout(x, 99, 0.5)
    close(f"dropout.{tag}", xd, xr, tol)
    close(f"dropout_mask.{tag}", md, mr, 0.0)
    logits = rng.standard_normal((3, 10)).astype(dt)
    labels = np.array([1, 7, 0], np.int32)
    loss, lse = ops.loss_fwd(cp.asarray(logits), cp.asarray(labels))
    loss_r, lse_r = ref.loss_fwd(logits, labels)
    close(f"loss.{tag}", loss, loss_r, 1e-4)
    g = cp.empty((3, 10), dt)
    g_r = np.empty((3, 10), dt)
    ops.loss_bwd(cp.asarray(logits), cp.asarray(labels), lse, g)
    ref.loss_bwd(logits, labels, lse_r, g_r)
    close(f"loss_bwd.{tag}", g, g_r, 1e-3)
    r = cp.asarray(x)
    ops.relu_(r)
    close(f"relu.{tag}", r, np.maximum(x, 0), 0.0)


def provenance(ops: NumpyOps, command: str) -> dict[str, Any]:
    if ops.name == "cupy":
        device, software = gpu_info(ops.xp), gpu_software(ops.xp)
    else:
        device, software = cpu_info(), numpy_software()
    return {"schema": SCHEMA, "date": utc_now(), "command": command, "device": device,
            "software": software, "notes": list(NOTES), "records": []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--backend", choices=("cupy", "numpy"), default="cupy")
    parser.add_argument("--batches", default="16,64")
    parser.add_argument("--precisions", default="fp32,fp16")
    parser.add_argument("--image", type=int, default=224)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--check-batch", type=int, default=2,
                        help="batch of the separate fp32 loss check (0: skip)")
    parser.add_argument("--check-graph", action="store_true",
                        help="compare the op sequence with the simulator's graph (needs it)")
    args = parser.parse_args(argv)
    ops: NumpyOps = CupyOps() if args.backend == "cupy" else NumpyOps()
    doc = provenance(ops, " ".join(["python3"] + sys.argv))
    doc["settings"] = {"image": args.image, "lr": args.lr, "momentum": MOMENTUM,
                       "dropout_p": DROPOUT_P, "warmup": args.warmup, "steps": args.steps,
                       "layout": "NHWC"}
    out = Path(args.out)
    if args.check_graph:
        problems = []
        for precision in args.precisions.split(","):
            problems += check_graph(2, precision, args.image)
        doc["graph_check"] = problems or "same op sequence as build_graph(..., 'im2col')"
        print("graph check:", doc["graph_check"], flush=True)
    if isinstance(ops, CupyOps):
        try:
            doc["kernel_self_test"] = self_test(ops)
        except Exception as exc:  # noqa: BLE001 - report it and time what still runs
            doc["kernel_self_test"] = {"all_ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print("kernel self-test ok:", doc["kernel_self_test"]["all_ok"], flush=True)
        if not doc["kernel_self_test"]["all_ok"]:
            print(doc["kernel_self_test"], flush=True)
    if args.check_batch:
        ops.release()
        try:
            check = loss_check(VGGStep(ops, args.check_batch, "fp32", args.image, args.lr))
        except Exception as exc:  # noqa: BLE001
            check = {"error": f"{type(exc).__name__}: {exc}"}
        check["batch"], check["precision"] = args.check_batch, "fp32"
        doc["loss_check"] = check
        print("loss check:", check, flush=True)
        ops.release()
    write_json_atomic(out, doc)
    for precision in args.precisions.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            t0 = time.perf_counter()
            try:
                record = time_config(ops, batch, precision, args.image, args.lr, args.warmup,
                                     args.steps)
            except Exception as exc:  # noqa: BLE001 - keep the other configurations
                record = {"model": "vgg16", "mode": "train", "batch": batch,
                          "precision": precision, "conv_algorithm": "im2col",
                          "error": f"{type(exc).__name__}: {exc}"}
                ops.release()
            doc["records"].append(record)
            write_json_atomic(out, doc)
            ms = record.get("median_s", float("nan")) * 1e3
            print(f"vgg16 train b{batch} {precision}: {ms:.2f} ms/step, phases "
                  f"{record.get('phases_median_s')}, host "
                  f"{record.get('host_enqueue_median_s')}, loss "
                  f"{record.get('loss_check', {}).get('losses')} "
                  f"({time.perf_counter() - t0:.1f} s) {record.get('error', '')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
