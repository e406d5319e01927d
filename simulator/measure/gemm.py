"""GEMM C = A @ B: squares, VGG16's convolutions as implicit GEMMs, and its FC layers.

Operands are row-major and contiguous (A is m x k, B is k x n). float32, TF32 and float16 use
the backend's own matmul (numpy's BLAS; CuPy's cuBLAS). CuPy has no bfloat16 array type, so
bf16 calls cuBLAS's cublasGemmEx directly on 16-bit patterns with float32 accumulation;
a small product is checked against float32 first and bf16 is skipped if it disagrees.
numpy float16 has no BLAS path (it is a plain loop, orders of magnitude slower), so only small
squares are timed in float16 on numpy.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from simulator.measure.backend import Backend
from simulator.measure.plan import Plan
from simulator.measure.records import ITEMSIZE, make_record
from simulator.measure.shapes import (
    GemmShape,
    conv_gemms,
    conv_layer,
    fc_gemms,
    square_gemms,
    vgg16_fcs,
)

# cuBLAS / CUDA enum values (cublas_api.h, library_types.h).
_CUDA_R_16BF = 14
_CUBLAS_COMPUTE_32F = 68
_CUBLAS_GEMM_DEFAULT = -1
_CUBLAS_OP_N = 0
_CUBLAS_POINTER_MODE_HOST = 0


def shaped_gemms(plan: Plan) -> list[GemmShape]:
    """VGG16 conv (implicit GEMM) and FC shapes of the plan, in sweep order."""
    shapes: list[GemmShape] = []
    for batch in plan.conv_gemm_batches:
        for name in plan.conv_gemm_layers:
            shapes += conv_gemms(conv_layer(name), batch)
    fcs = {name: (n_in, n_out) for name, n_in, n_out in vgg16_fcs()}
    for batch in plan.fc_batches:
        for name in plan.fc_layers:
            shapes += fc_gemms(name, *fcs[name], batch)
    return shapes


def _bf16_matmul(cupy: Any, a: Any, b: Any, c: Any) -> Callable[[], None]:
    """C = A @ B in bf16 through cublasGemmEx; row-major trick: C^T = B^T A^T (column-major)."""
    try:
        from cupy_backends.cuda.libs import cublas
    except ImportError:  # older CuPy layouts
        from cupy.cuda import cublas
    m, k = a.shape
    n = b.shape[1]
    alpha, beta = np.ones(1, np.float32), np.zeros(1, np.float32)
    handle = cupy.cuda.device.get_cublas_handle()

    def run() -> None:
        cublas.setPointerMode(handle, _CUBLAS_POINTER_MODE_HOST)  # alpha, beta live on the host
        cublas.gemmEx(
            handle,
            _CUBLAS_OP_N,
            _CUBLAS_OP_N,
            n,
            m,
            k,
            alpha.ctypes.data,
            b.data.ptr,
            _CUDA_R_16BF,
            n,
            a.data.ptr,
            _CUDA_R_16BF,
            k,
            beta.ctypes.data,
            c.data.ptr,
            _CUDA_R_16BF,
            n,
            _CUBLAS_COMPUTE_32F,
            _CUBLAS_GEMM_DEFAULT,
        )

    return run


def bf16_to_fp32(xp: Any, bits: Any) -> Any:
    return (bits.astype(xp.uint32) << 16).view(xp.float32)


def check_bf16(backend: Backend) -> float:
    """Relative error of the bf16 path against float32 on the same (bf16-rounded) inputs."""
    xp = backend.xp
    a, b = backend.rand((256, 192), "bf16"), backend.rand((192, 128), "bf16")
    c = backend.empty((256, 128), "bf16")
    _bf16_matmul(xp, a, b, c)()
    ref = bf16_to_fp32(xp, a) @ bf16_to_fp32(xp, b)
    err = xp.linalg.norm(bf16_to_fp32(xp, c) - ref) / xp.linalg.norm(ref)
    return float(err)


def _matmul(backend: Backend, dtype: str, a: Any, b: Any, c: Any) -> Callable[[], Any]:
    if dtype == "bf16":
        return _bf16_matmul(backend.xp, a, b, c)
    xp = backend.xp
    return lambda: xp.matmul(a, b, out=c)


def time_gemm(backend: Backend, shape: GemmShape, dtype: str) -> dict[str, Any]:
    """Allocate, warm up and time one GEMM; returns its record."""
    a = backend.rand((shape.m, shape.k), dtype)
    b = backend.rand((shape.k, shape.n), dtype)
    c = backend.empty((shape.m, shape.n), dtype)
    times = backend.timer.time(_matmul(backend, dtype, a, b, c))
    m, n, k = shape.m, shape.n, shape.k
    return make_record(
        "gemm",
        dtype,
        backend.threads,
        shape.label,
        {"m": m, "n": n, "k": k},
        2.0 * m * n * k,
        float(m * k + k * n + m * n) * ITEMSIZE[dtype],
        times,
    )


def _cases(plan: Plan, dtype: str, numpy_fp16: bool) -> list[GemmShape]:
    low = dtype in ("fp16", "bf16")
    squares = [
        s
        for s in square_gemms(plan.square_sizes)
        if not low or s.m <= plan.low_precision_square_max
    ]
    shaped = shaped_gemms(plan) if dtype in plan.shaped_gemm_dtypes and not numpy_fp16 else []
    return squares + shaped


def run_gemm(
    backend: Backend, plan: Plan, dtypes: tuple[str, ...], notes: dict[str, Any]
) -> list[dict[str, Any]]:
    """Time every GEMM case of the plan for each dtype; skips cases predicted too slow."""
    records = []
    for dtype in dtypes:
        if dtype == "bf16" and not _bf16_usable(backend, notes):
            continue
        best_rate = 0.0  # FLOP/s seen so far for this dtype, to predict the next case
        for shape in _cases(plan, dtype, numpy_fp16=dtype == "fp16" and not backend.is_gpu):
            flops = 2.0 * shape.m * shape.n * shape.k
            if best_rate and flops / best_rate > plan.max_rep_s:
                continue
            record = time_gemm(backend, shape, dtype)
            best_rate = max(best_rate, flops / record["median_s"])
            records.append(record)
            if flops > 2e11:
                backend.release()
        print(
            f"  gemm {dtype}: {sum(r['dtype'] == dtype for r in records)} shapes", file=sys.stderr
        )
        backend.release()
    return records


def _bf16_usable(backend: Backend, notes: dict[str, Any]) -> bool:
    if not backend.is_gpu:
        return False
    try:
        err = check_bf16(backend)
    except Exception as exc:  # noqa: BLE001 - the cuBLAS binding varies by CuPy version
        notes["bf16_gemm"] = f"skipped: {type(exc).__name__}: {exc}"
        return False
    notes["bf16_gemm"] = {
        "path": "cublasGemmEx CUDA_R_16BF, CUBLAS_COMPUTE_32F",
        "rel_err_vs_fp32": err,
    }
    return err < 2e-2
