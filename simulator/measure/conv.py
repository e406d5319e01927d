"""3x3 convolution (stride 1, padding 1) forward and backward via im2col + GEMM, NCHW tensors.

The layout follows what a framework without cuDNN does: the input is copied to a zero-padded
NHWC buffer, im2col gathers the 9 shifted windows into a (N*H*W, 9*C) matrix (9 block copies
of contiguous channel runs), one GEMM does the arithmetic, and the result goes back to NCHW.
Backward-data is the same convolution of the output gradient with the flipped, transposed
weights (M=N*H*W, N=Cin, K=Cout*9); backward-weight is dY^T @ cols (M=Cout, N=Cin*9,
K=N*H*W) with im2col recomputed, as Caffe does. Each stage is timed, so records carry
"parts_s" besides the whole time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from simulator.measure.backend import Backend
from simulator.measure.plan import Plan
from simulator.measure.records import ITEMSIZE, make_record, median_parts
from simulator.measure.shapes import ConvLayer, conv_layer

Parts = list[tuple[str, Callable[[], Any]]]


class ConvWork:
    """Buffers and stage functions for one convolution at one batch and dtype."""

    def __init__(self, backend: Backend, layer: ConvLayer, batch: int, dtype: str) -> None:
        n, c, o, s = batch, layer.in_channels, layer.out_channels, layer.size
        self.xp, self.n, self.c, self.o, self.s = backend.xp, n, c, o, s
        self.x, self.w = backend.rand((n, c, s, s), dtype), backend.rand((o, c, 3, 3), dtype)
        self.dy = backend.rand((n, o, s, s), dtype)
        self.y, self.dx = backend.empty((n, o, s, s), dtype), backend.empty((n, c, s, s), dtype)
        self.dw = backend.empty((o, c, 3, 3), dtype)
        self.pad_x = backend.zeros((n, s + 2, s + 2, c), dtype)
        self.pad_dy = backend.zeros((n, s + 2, s + 2, o), dtype)
        self.cols_x = backend.empty((n, s, s, 3, 3, c), dtype)
        self.cols_dy = backend.empty((n, s, s, 3, 3, o), dtype)
        self.w_mat, self.wd_mat = backend.empty((o, 9 * c), dtype), backend.empty((c, 9 * o), dtype)
        self.y_mat, self.dx_mat = (
            backend.empty((n * s * s, o), dtype),
            backend.empty((n * s * s, c), dtype),
        )
        self.dy_mat, self.dw_mat = (
            backend.empty((n * s * s, o), dtype),
            backend.empty((o, 9 * c), dtype),
        )

    def _pad(self, src: Any, pad: Any) -> None:
        pad[:, 1:-1, 1:-1, :] = src.transpose(0, 2, 3, 1)

    def _im2col(self, pad: Any, cols: Any) -> None:
        s = self.s
        for i in range(3):
            for j in range(3):
                cols[:, :, :, i, j, :] = pad[:, i : i + s, j : j + s, :]

    def forward_parts(self) -> Parts:
        m = self.n * self.s * self.s
        return [
            ("pad_nhwc", lambda: self._pad(self.x, self.pad_x)),
            ("im2col", lambda: self._im2col(self.pad_x, self.cols_x)),
            ("weight_layout", self._fwd_weight),
            (
                "gemm",
                lambda: self.xp.matmul(self.cols_x.reshape(m, -1), self.w_mat.T, out=self.y_mat),
            ),
            ("to_nchw", lambda: self._to_nchw(self.y_mat, self.y)),
        ]

    def backward_data_parts(self) -> Parts:
        m = self.n * self.s * self.s
        return [
            ("pad_nhwc", lambda: self._pad(self.dy, self.pad_dy)),
            ("im2col", lambda: self._im2col(self.pad_dy, self.cols_dy)),
            ("weight_layout", self._bwd_weight),
            (
                "gemm",
                lambda: self.xp.matmul(self.cols_dy.reshape(m, -1), self.wd_mat.T, out=self.dx_mat),
            ),
            ("to_nchw", lambda: self._to_nchw(self.dx_mat, self.dx)),
        ]

    def backward_weight_parts(self) -> Parts:
        m = self.n * self.s * self.s
        return [
            ("pad_nhwc", lambda: self._pad(self.x, self.pad_x)),
            ("im2col", lambda: self._im2col(self.pad_x, self.cols_x)),
            ("dy_nhwc", self._dy_nhwc),
            (
                "gemm",
                lambda: self.xp.matmul(self.dy_mat.T, self.cols_x.reshape(m, -1), out=self.dw_mat),
            ),
            ("weight_layout", self._dw_nchw),
        ]

    def _fwd_weight(self) -> None:
        self.w_mat.reshape(self.o, 3, 3, self.c)[...] = self.w.transpose(0, 2, 3, 1)

    def _bwd_weight(self) -> None:  # wd[c, i, j, o] = w[o, c, 2-i, 2-j]
        self.wd_mat.reshape(self.c, 3, 3, self.o)[...] = self.w[:, :, ::-1, ::-1].transpose(
            1, 2, 3, 0
        )

    def _to_nchw(self, mat: Any, out: Any) -> None:
        out[...] = mat.reshape(self.n, self.s, self.s, -1).transpose(0, 3, 1, 2)

    def _dy_nhwc(self) -> None:
        self.dy_mat.reshape(self.n, self.s, self.s, self.o)[...] = self.dy.transpose(0, 2, 3, 1)

    def _dw_nchw(self) -> None:
        self.dw[...] = self.dw_mat.reshape(self.o, 3, 3, self.c).transpose(0, 3, 1, 2)


def _record(
    op: str,
    work: ConvWork,
    layer: ConvLayer,
    label: str,
    dtype: str,
    threads: int | None,
    parts: list[dict[str, float]],
) -> dict[str, Any]:
    n, c, o, s = work.n, work.c, work.o, work.s
    flops = 2.0 * n * o * s * s * c * 9
    io = {
        "conv2d_fwd": n * c * s * s + n * o * s * s,
        "conv2d_bwd_data": n * o * s * s + n * c * s * s,
        "conv2d_bwd_weight": n * c * s * s + n * o * s * s,
    }[op]
    shape = {
        "batch": n,
        "in_channels": c,
        "out_channels": o,
        "height": s,
        "width": s,
        "kernel": 3,
        "stride": 1,
        "padding": 1,
    }
    record = make_record(
        op,
        dtype,
        threads,
        label,
        shape,
        flops,
        float(io + o * c * 9) * ITEMSIZE[dtype],
        [sum(p.values()) for p in parts],
    )
    record["parts_s"] = median_parts(parts)
    return record


def run_conv(backend: Backend, plan: Plan, dtypes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Time forward, backward-data and backward-weight of each planned VGG16 convolution."""
    records = []
    for dtype in dtypes:
        for name in plan.conv_layers:
            layer, batch = conv_layer(name), plan.conv_batch
            work = ConvWork(backend, layer, batch, dtype)
            for op, parts, tag in (
                ("conv2d_fwd", work.forward_parts(), "fwd"),
                ("conv2d_bwd_data", work.backward_data_parts(), "bwd_data"),
                ("conv2d_bwd_weight", work.backward_weight_parts(), "bwd_weight"),
            ):
                times = backend.timer.time_parts(parts)
                label = f"vgg16.{name}.{tag}.b{batch}"
                records.append(_record(op, work, layer, label, dtype, backend.threads, times))
            del work
            backend.release()
        print(f"  conv {dtype}: {len(plan.conv_layers)} layers", file=sys.stderr)
    return records
