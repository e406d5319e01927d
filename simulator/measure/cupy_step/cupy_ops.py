"""The kernels of the VGG16 step on an NVIDIA GPU through CuPy.

Holds:
- `CupyOps`: `NumpyOps`' interface on CuPy arrays: CUDA events and the spin kernel for
  timing, the hand-written kernels of cuda_kernels.py, cuBLAS (through `cupy.dot`) and CuPy's
  own ufuncs. CuPy is imported when one is made, so this module imports without it.

Raw array arguments are passed as 1-D views: CuPy's raw indexing of an n-D array unravels a
flat index with a division per dimension, a 1-D one is a plain offset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.measure.cupy_step.cuda_kernels import compile_kernels
from simulator.measure.cupy_step.reference_ops import NumpyOps


class CupyOps(NumpyOps):
    """The same kernels as CuPy ElementwiseKernels, cuBLAS and CuPy's own ufuncs."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy as cp

        from simulator.measure.timing import GpuTimer

        self.xp = self.cp = cp
        self._timer = GpuTimer(cp, quick=False)  # for its spin kernel
        self.k = compile_kernels(cp)

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

    def to_host(self, x: Any) -> np.ndarray:
        return self.cp.asnumpy(x)

    # --- kernels ---
    def im2col(self, x: Any, cols: Any) -> None:
        _, h, w, c = x.shape
        i32 = np.int32
        self.k.im2col(x.reshape(-1), i32(h), i32(w), i32(c), cols.reshape(-1), size=x.size)

    def col2im(self, gcols: Any, shape: tuple[int, ...]) -> Any:
        _, h, w, c = shape
        dx = self.cp.empty(shape, gcols.dtype)
        self.k.col2im(gcols.reshape(-1), np.int32(h), np.int32(w), np.int32(c), dx)
        return dx

    def maxpool(self, x: Any) -> tuple[Any, Any]:
        n, h, w, c = x.shape
        y = self.cp.empty((n, h // 2, w // 2, c), x.dtype)
        idx = self.cp.empty((n, h // 2, w // 2, c), self.cp.int64)
        self.k.maxpool(x.reshape(-1), np.int32(h), np.int32(w), np.int32(c), y, idx)
        return y, idx

    def maxpool_bwd(self, g: Any, idx: Any, shape: tuple[int, ...]) -> Any:
        _, h, w, c = shape
        dx = self.cp.empty(shape, g.dtype)
        self.k.maxpool_bwd(g.reshape(-1), idx.reshape(-1), np.int32(h), np.int32(w),
                           np.int32(c), dx)
        return dx

    def relu_(self, x: Any) -> None:
        self.k.relu(x, x)

    def relu_bwd_(self, y: Any, g: Any) -> None:
        self.k.relu_bwd(y, g, g)

    def dropout(self, x: Any, seed: int, p: float) -> tuple[Any, Any]:
        y = self.cp.empty_like(x)
        mask = self.cp.empty(x.shape, self.cp.bool_)
        self.k.dropout(x, np.uint32(seed & 0xFFFFFFFF), np.float32(p),
                       np.float32(1.0 / (1.0 - p)), y, mask)
        return y, mask

    def dropout_bwd_(self, g: Any, mask: Any, p: float) -> None:
        self.k.dropout_bwd(g, mask, np.float32(1.0 / (1.0 - p)), g)

    def cast(self, dst: Any, src: Any) -> None:
        self.cp.copyto(dst, src, casting="same_kind")

    def loss_fwd(self, logits: Any, labels: Any) -> tuple[Any, Any]:
        m = self.k.rowmax(logits, axis=1)
        s = self.k.rowsumexp(logits, m[:, None], axis=1)
        lse = self.cp.empty(m.shape, self.cp.float32)
        rows = self.cp.empty(m.shape, self.cp.float32)
        self.k.rowloss(m, s, labels, logits.reshape(-1), np.int32(logits.shape[1]), lse, rows)
        return rows.mean(), lse

    def loss_bwd(self, logits: Any, labels: Any, lse: Any, out: Any) -> None:
        n, k = logits.shape
        self.k.loss_bwd(logits.reshape(-1), lse, labels, np.int32(k), np.float32(1.0 / n), out)

    def sgd_(self, w: Any, g: Any, buf: Any, lr: float, mu: float) -> None:
        self.k.sgd(g, w, buf, np.float32(lr), np.float32(mu), w, buf)
