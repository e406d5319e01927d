"""The CuPy VGG16 step's own layer kernels, each timed alone: kernel data for calibration.

Run on a machine with CuPy and a CUDA GPU (not imported by the tests):

    python benchmarks/cupy_layer_kernels.py --out measurements/NAME-cupy-layer-kernels.json

benchmarks/cupy_vgg16_step.py builds a VGG16 training step from hand-written CuPy kernels
(im2col, col2im, max pooling's backward) and CuPy ufuncs (the broadcast bias add). These are
one-element-per-thread kernels whose speed is set by index arithmetic and per-element memory
instructions, not by bytes, so a float16 one is not twice as fast as a float32 one. This
script times exactly those kernels (the same CupyOps objects) on the shapes of VGG16's
layers at batches 2, 8 and 32 -- not the step's batches 16 and 64, so the step stays a
held-out check -- in float32 and float16, queued behind a spin kernel, CUDA events, medians
of 5. Records follow simulator.measurements/1 (backend "cupy"); `python -m simulator
calibrate` fits a per-kernel element rate from them (keys "im2col.fp16", ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cupy_vgg16_step import CupyOps  # noqa: E402

from simulator.measure.provenance import gpu_info, gpu_software, utc_now  # noqa: E402
from simulator.measure.records import SCHEMA, make_record  # noqa: E402
from simulator.measure.timing import GpuTimer  # noqa: E402
from simulator.report.atomic import write_json_atomic  # noqa: E402

# (name, input channels, input size) of VGG16's convolutions with distinct shapes, and the
# (name, channels, input size) of its pools
CONVS = (("conv1_1", 3, 224), ("conv1_2", 64, 224), ("conv2_1", 64, 112),
         ("conv2_2", 128, 112), ("conv3_1", 128, 56), ("conv3_2", 256, 56),
         ("conv4_1", 256, 28), ("conv4_2", 512, 28), ("conv5_1", 512, 14))
POOLS = (("pool1", 64, 224), ("pool2", 128, 112), ("pool3", 256, 56), ("pool4", 512, 28),
         ("pool5", 512, 14))
BATCHES = (2, 8, 32)
DTYPES = {"fp32": "float32", "fp16": "float16"}
ITEM = {"fp32": 4, "fp16": 2}


def conv_kernels(ops: CupyOps, timer: GpuTimer, dtype: str) -> list[dict[str, Any]]:
    """im2col (fwd), col2im (bwd-data) and the bias add after the GEMM, per conv layer."""
    cp, out, size = ops.cp, [], ITEM[dtype]
    for batch in BATCHES:
        for name, c, s in CONVS:
            x = cp.random.standard_normal((batch, s, s, c), dtype="float32").astype(DTYPES[dtype])
            n_in, cols = x.size, x.size * 9
            col = cp.empty((batch * s * s, 9 * c), x.dtype)
            label = f"vgg16.{name}.b{batch}"
            # the graph's im2col: reads the input, writes the patch matrix; one item per output
            out.append(make_record("im2col", dtype, None, label, {"elements": cols},
                                   float(cols), float((n_in + cols) * size),
                                   timer.time(lambda: ops.im2col(x, col))))
            # col2im: reads the patch gradients, writes the input gradient; one item per input
            out.append(make_record("col2im", dtype, None, label, {"elements": n_in},
                                   float(cols), float((n_in + cols) * size),
                                   timer.time(lambda: ops.col2im(col, x.shape))))
            del col
    for batch in BATCHES:
        for name, c, s in POOLS:  # the conv before each pool has c output channels at s x s
            y = cp.random.standard_normal((batch * s * s, c), dtype="float32").astype(DTYPES[dtype])
            bias = cp.random.standard_normal((c,), dtype="float32").astype(DTYPES[dtype])

            def add_bias(y: Any = y, bias: Any = bias) -> None:
                y += bias

            out.append(make_record("bias_add", dtype, None, f"vgg16.{name}.b{batch}",
                                   {"elements": y.size, "channels": c}, float(y.size),
                                   2.0 * y.size * size, timer.time(add_bias)))
    return out


def pool_kernels(ops: CupyOps, timer: GpuTimer, dtype: str) -> list[dict[str, Any]]:
    """Max pooling forward (with int64 argmax) and its backward scatter."""
    cp, out, size = ops.cp, [], ITEM[dtype]
    for batch in BATCHES:
        for name, c, s in POOLS:
            x = cp.random.standard_normal((batch, s, s, c), dtype="float32").astype(DTYPES[dtype])
            y, idx = ops.maxpool(x)
            n_out, n = y.size, x.size
            shape = {"batch": batch, "channels": c, "height": s, "width": s, "kernel": 2,
                     "stride": 2}
            label = f"vgg16.{name}.b{batch}"
            out.append(make_record("maxpool2d", dtype, None, label, shape, 4.0 * n_out,
                                   (4 * n_out + n_out) * size + 8.0 * n_out,
                                   timer.time(lambda: ops.maxpool(x))))
            out.append(make_record("maxpool2d_bwd", dtype, None, label, shape, float(n),
                                   (n + n_out) * size + 8.0 * n_out,
                                   timer.time(lambda: ops.maxpool_bwd(y, idx, x.shape))))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import cupy as cp

    ops = CupyOps()
    timer = GpuTimer(cp, quick=False)
    records: list[dict[str, Any]] = []
    for dtype in DTYPES:
        records += conv_kernels(ops, timer, dtype) + pool_kernels(ops, timer, dtype)
        ops.release()
    command = "python benchmarks/cupy_layer_kernels.py --out " + args.out
    doc = {"schema": SCHEMA, "backend": "cupy", "date": utc_now(), "command": command,
           "device": gpu_info(cp), "software": {**gpu_software(cp), "method": (
               "each kernel of benchmarks/cupy_vgg16_step.py's CupyOps alone, queued behind a "
               "spin kernel, CUDA events (simulator.measure.timing.GpuTimer), medians of the "
               "repetitions; batches 2, 8, 32 (the step is timed at 16 and 64)")},
           "records": records}
    write_json_atomic(Path(args.out), doc)
    print(f"wrote {args.out}: {len(records)} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
