"""Memory-bound kernels: relu (max(x, 0)), add (x + y), sum, and 2x2 stride-2 max pooling.

Outputs are preallocated (out=) so that allocation stays out of the time. Pooling on numpy is
three np.maximum passes over strided views (what numpy code would do); on CuPy it is one
fused elementwise kernel that reads each input once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from simulator.measure.backend import Backend
from simulator.measure.plan import Plan
from simulator.measure.records import ITEMSIZE, make_record
from simulator.measure.shapes import vgg16_pools

_POOL_KERNEL_BODY = """
const ptrdiff_t wo = W / 2, ho = H / 2;
const ptrdiff_t ow = i % wo, t = i / wo, oh = t % ho, nc = t / ho;
const ptrdiff_t base = (nc * H + 2 * oh) * W + 2 * ow;
const T v0 = x[base], v1 = x[base + 1], v2 = x[base + W], v3 = x[base + W + 1];
const T a = v0 > v1 ? v0 : v1;
const T b = v2 > v3 ? v2 : v3;
y = a > b ? a : b;
"""


def _elementwise_record(
    op: str, backend: Backend, dtype: str, n: int, times: list[float]
) -> dict[str, Any]:
    arrays_moved = {"relu": 2, "add": 3, "sum": 1}[op]
    extra = ITEMSIZE[dtype] if op == "sum" else 0  # the scalar result
    return make_record(
        op,
        dtype,
        backend.threads,
        "1d",
        {"elements": n},
        float(n),
        float(arrays_moved * n * ITEMSIZE[dtype] + extra),
        times,
    )


def _kernels(xp: Any, x: Any, y: Any, z: Any) -> dict[str, Callable[[], Any]]:
    return {
        "relu": lambda: xp.maximum(x, 0, out=z),
        "add": lambda: xp.add(x, y, out=z),
        "sum": lambda: x.sum(),
    }


def run_elementwise(backend: Backend, plan: Plan) -> list[dict[str, Any]]:
    """relu, add and sum over 2**k elements for each planned k and dtype."""
    xp, records = backend.xp, []
    for dtype in plan.elementwise_dtypes:
        for log2 in plan.elementwise_log2:
            n = 1 << log2
            x, y = backend.rand((n,), dtype), backend.rand((n,), dtype)
            kernels = _kernels(xp, x, y, backend.empty((n,), dtype))
            for op, fn in kernels.items():
                records.append(_elementwise_record(op, backend, dtype, n, backend.timer.time(fn)))
            del kernels, x, y
        backend.release()
        print(f"  elementwise {dtype}: {len(plan.elementwise_log2)} sizes", file=sys.stderr)
    return records


def _pool_fn(backend: Backend, x: Any, out: Any) -> Callable[[], Any]:
    h, w = x.shape[2], x.shape[3]
    if backend.is_gpu:
        import numpy as np

        kernel = backend.xp.ElementwiseKernel(
            "raw T x, int64 H, int64 W", "T y", _POOL_KERNEL_BODY, "simulator_maxpool2x2"
        )
        return lambda: kernel(x, np.int64(h), np.int64(w), out)
    xp = backend.xp
    a, b = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
    c, d = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]

    def run() -> None:
        xp.maximum(a, b, out=out)
        xp.maximum(out, c, out=out)
        xp.maximum(out, d, out=out)

    return run


def run_pool(backend: Backend, plan: Plan) -> list[dict[str, Any]]:
    """2x2 stride-2 max pooling on the NCHW inputs of VGG16's pooling layers."""
    records = []
    pools = {name: (c, s) for name, c, s in vgg16_pools()}
    for dtype in plan.elementwise_dtypes:
        for batch in plan.pool_batches:
            for name in plan.pool_layers:
                c, s = pools[name]
                x = backend.rand((batch, c, s, s), dtype)
                out = backend.empty((batch, c, s // 2, s // 2), dtype)
                times = backend.timer.time(_pool_fn(backend, x, out))
                outputs = batch * c * (s // 2) ** 2
                shape = {
                    "batch": batch,
                    "channels": c,
                    "height": s,
                    "width": s,
                    "kernel": 2,
                    "stride": 2,
                }
                records.append(
                    make_record(
                        "maxpool2d",
                        dtype,
                        backend.threads,
                        f"vgg16.{name}.b{batch}",
                        shape,
                        4.0 * outputs,
                        float(x.size + outputs) * ITEMSIZE[dtype],
                        times,
                    )
                )
                del x, out
            backend.release()
    return records


def check_pool(backend: Backend) -> None:
    """Raise AssertionError unless the pooling kernel matches a reshape-and-max reference."""
    xp = backend.xp
    x = backend.rand((2, 3, 8, 6), "fp32")
    out = backend.empty((2, 3, 4, 3), "fp32")
    _pool_fn(backend, x, out)()
    ref = x.reshape(2, 3, 4, 2, 3, 2).max(axis=(3, 5))
    assert bool(xp.all(out == ref)), "max pooling kernel disagrees with its reference"
