"""Ground truth for the im2col graph: a real VGG16 training step built only from CuPy kernels.

Run on a machine with CuPy and a CUDA GPU, with this project installed (`pip install -e .`;
where its other dependencies are missing, `pip install --no-deps --no-build-isolation -e .`
or run with PYTHONPATH set to the repository root); not imported by the tests:

    python benchmarks/cupy_vgg16_step.py --out measurements/NAME-cupy-vgg16-step.json

The step, its timing and its checks live in `simulator.measure.cupy_step` (see its
docstring); this script parses the command line and calls
`simulator.measure.cupy_step.run.run_step_benchmark`. `--backend numpy` (with `--image` to
shrink the input) runs the same step on numpy to check shapes, the graph and the loss
locally without a GPU.
"""

from __future__ import annotations

import argparse
import sys

from simulator.measure.cupy_step.run import StepSettings, run_step_benchmark


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
    run_step_benchmark(StepSettings(**vars(args)), " ".join(["python3"] + sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
