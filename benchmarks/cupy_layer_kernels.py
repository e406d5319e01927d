"""The CuPy VGG16 step's own layer kernels, each timed alone: kernel data for calibration.

Run on a machine with CuPy and a CUDA GPU, with this project installed (`pip install -e .`;
where its other dependencies are missing, `pip install --no-deps --no-build-isolation -e .`
or run with PYTHONPATH set to the repository root); not imported by the tests:

    python benchmarks/cupy_layer_kernels.py --out measurements/NAME-cupy-layer-kernels.json

It times the im2col, col2im, bias-add and max-pooling kernels of the CuPy VGG16 step
(benchmarks/cupy_vgg16_step.py) on the shapes of VGG16's layers at batches 2, 8 and 32, in
float32 and float16; the code is `simulator.measure.cupy_step.layer_kernels` (see its
docstring). Records follow simulator.measurements/1 (backend "cupy"); `python -m simulator
calibrate` fits a per-kernel element rate from them (keys "im2col.fp16", ...).
"""

from __future__ import annotations

import argparse

from simulator.measure.cupy_step.layer_kernels import run_layer_kernels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    run_layer_kernels(args.out, "python benchmarks/cupy_layer_kernels.py --out " + args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
