"""The kernels of the CuPy VGG16 step in numpy: the reference the CuPy kernels are tested
against, and the CPU stand-in that runs the whole step without a GPU.

Holds:
- `hash_uniform_np(n, seed)`: the dropout kernel's counter-based hash, as uniform floats.
- `NumpyOps`: timing hooks (host clock) and every kernel of the step, on numpy arrays in
  NHWC layout. `CupyOps` (cupy_ops.py) overrides each with a GPU kernel of the same meaning.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np


def hash_uniform_np(n: int, seed: int) -> np.ndarray:
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


def _bins(i: int, size: int, out: int) -> tuple[int, int]:
    """Start and end of adaptive-pooling bin `i` of `out` over `size` (PyTorch's bins)."""
    return (i * size) // out, -((-(i + 1) * size) // out)


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

    def to_host(self, x: Any) -> np.ndarray:
        """`x` as a numpy array (CupyOps copies it from the GPU)."""
        return np.asarray(x)

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
        mask = (hash_uniform_np(x.size, seed) >= np.float32(p)).reshape(x.shape)
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
            h0, h1 = _bins(i, h, out)
            for j in range(out):
                w0, w1 = _bins(j, w, out)
                y[:, i, j, :] = x[:, h0:h1, w0:w1, :].mean(axis=(1, 2))
        return y

    def adaptive_avgpool_bwd(self, g: Any, shape: tuple[int, ...]) -> Any:
        xp = self.xp
        _, h, w, _ = shape
        out = g.shape[1]
        dx = xp.zeros(shape, xp.float32)
        for i in range(out):
            h0, h1 = _bins(i, h, out)
            for j in range(out):
                w0, w1 = _bins(j, w, out)
                dx[:, h0:h1, w0:w1, :] += g[:, i:i + 1, j:j + 1, :].astype(xp.float32) / (
                    (h1 - h0) * (w1 - w0))
        return dx.astype(g.dtype)
