"""The CuPy VGG16 step's own layer kernels, each timed alone: kernel data for calibration.

Holds:
- `BATCHES`, `DTYPES`: batches 2, 8 and 32 (not the step's 16 and 64, so the step stays a
  held-out check), in float32 and float16.
- `conv_kernels(ops, timer, dtype)`: im2col, col2im and the bias add of each conv shape.
- `pool_kernels(ops, timer, dtype)`: max pooling forward and backward of each pool.
- `run_layer_kernels(out, command)`: all of them on the GPU, written to `out` as
  simulator.measurements/1 (backend "cupy").

The step's hand-written kernels (im2col, col2im, max pooling's backward) and CuPy ufuncs (the
broadcast bias add) are one-element-per-thread kernels whose speed is set by index
arithmetic and per-element memory instructions, not by bytes, so a float16 one is not twice
as fast as a float32 one. These are exactly those kernels (the same `CupyOps`), on the shapes
of VGG16's layers (from its model file), queued behind a spin kernel, CUDA events, medians
of 5. `python -m simulator calibrate` fits a per-kernel element rate from them (keys
"im2col.fp16", ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.measure.cupy_step.cupy_ops import CupyOps
from simulator.measure.provenance import gpu_info, gpu_software, utc_now
from simulator.measure.records import SCHEMA, make_record
from simulator.measure.shapes import vgg16_distinct_convs, vgg16_pools
from simulator.measure.timing import GpuTimer
from simulator.report.atomic import write_json_atomic

BATCHES = (2, 8, 32)
DTYPES = {"fp32": "float32", "fp16": "float16"}
ITEM = {"fp32": 4, "fp16": 2}
METHOD = ("each kernel of benchmarks/cupy_vgg16_step.py's CupyOps alone, queued behind a "
          "spin kernel, CUDA events (simulator.measure.timing.GpuTimer), medians of the "
          "repetitions; batches 2, 8, 32 (the step is timed at 16 and 64)")


def _patch_records(ops: CupyOps, timer: GpuTimer, dtype: str, batch: int, name: str, c: int,
                   s: int) -> list[dict[str, Any]]:
    """im2col (fwd) and col2im (bwd-data) of one conv layer's input at `batch`."""
    cp, size = ops.cp, ITEM[dtype]
    x = cp.random.standard_normal((batch, s, s, c), dtype="float32").astype(DTYPES[dtype])
    n_in, cols = x.size, x.size * 9
    col = cp.empty((batch * s * s, 9 * c), x.dtype)
    label = f"vgg16.{name}.b{batch}"
    # the graph's im2col: reads the input, writes the patch matrix; one item per output
    out = [make_record("im2col", dtype, None, label, {"elements": cols}, float(cols),
                       float((n_in + cols) * size), timer.time(lambda: ops.im2col(x, col)))]
    # col2im: reads the patch gradients, writes the input gradient; one item per input
    out.append(make_record("col2im", dtype, None, label, {"elements": n_in}, float(cols),
                           float((n_in + cols) * size),
                           timer.time(lambda: ops.col2im(col, x.shape))))
    return out


def _bias_add_record(ops: CupyOps, timer: GpuTimer, dtype: str, batch: int, name: str,
                     c: int, s: int) -> dict[str, Any]:
    """The broadcast bias add after the GEMM of the conv before pool `name` (c channels)."""
    cp = ops.cp
    y = cp.random.standard_normal((batch * s * s, c), dtype="float32").astype(DTYPES[dtype])
    bias = cp.random.standard_normal((c,), dtype="float32").astype(DTYPES[dtype])

    def add_bias(y: Any = y, bias: Any = bias) -> None:
        y += bias

    return make_record("bias_add", dtype, None, f"vgg16.{name}.b{batch}",
                       {"elements": y.size, "channels": c}, float(y.size),
                       2.0 * y.size * ITEM[dtype], timer.time(add_bias))


def conv_kernels(ops: CupyOps, timer: GpuTimer, dtype: str) -> list[dict[str, Any]]:
    """im2col (fwd), col2im (bwd-data) and the bias add after the GEMM, per conv layer."""
    out: list[dict[str, Any]] = []
    for batch in BATCHES:
        for layer in vgg16_distinct_convs():
            out += _patch_records(ops, timer, dtype, batch, layer.name, layer.in_channels,
                                  layer.size)
    for batch in BATCHES:
        for name, c, s in vgg16_pools():  # the conv before each pool has c outputs at s x s
            out.append(_bias_add_record(ops, timer, dtype, batch, name, c, s))
    return out


def _pool_records(ops: CupyOps, timer: GpuTimer, dtype: str, batch: int, name: str, c: int,
                  s: int) -> list[dict[str, Any]]:
    """Max pooling forward (with int64 argmax) and its backward scatter, one pool layer."""
    size = ITEM[dtype]
    x = ops.cp.random.standard_normal((batch, s, s, c), dtype="float32").astype(DTYPES[dtype])
    y, idx = ops.maxpool(x)
    n_out, n = y.size, x.size
    shape = {"batch": batch, "channels": c, "height": s, "width": s, "kernel": 2, "stride": 2}
    label = f"vgg16.{name}.b{batch}"
    return [make_record("maxpool2d", dtype, None, label, shape, 4.0 * n_out,
                        (4 * n_out + n_out) * size + 8.0 * n_out,
                        timer.time(lambda: ops.maxpool(x))),
            make_record("maxpool2d_bwd", dtype, None, label, shape, float(n),
                        (n + n_out) * size + 8.0 * n_out,
                        timer.time(lambda: ops.maxpool_bwd(y, idx, x.shape)))]


def pool_kernels(ops: CupyOps, timer: GpuTimer, dtype: str) -> list[dict[str, Any]]:
    """Max pooling forward (with int64 argmax) and its backward scatter."""
    out: list[dict[str, Any]] = []
    for batch in BATCHES:
        for name, c, s in vgg16_pools():
            out += _pool_records(ops, timer, dtype, batch, name, c, s)
    return out


def run_layer_kernels(out: str, command: str) -> dict[str, Any]:
    """Time every layer kernel on the GPU and write the measurements file `out`."""
    import cupy as cp

    ops = CupyOps()
    timer = GpuTimer(cp, quick=False)
    records: list[dict[str, Any]] = []
    for dtype in DTYPES:
        records += conv_kernels(ops, timer, dtype) + pool_kernels(ops, timer, dtype)
        ops.release()
    doc = {"schema": SCHEMA, "backend": "cupy", "date": utc_now(), "command": command,
           "device": gpu_info(cp), "software": {**gpu_software(cp), "method": METHOD},
           "records": records}
    write_json_atomic(Path(out), doc)
    print(f"wrote {out}: {len(records)} records")
    return doc
