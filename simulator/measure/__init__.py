"""Measurement of real kernels (numpy on a CPU, CuPy on an NVIDIA GPU) for calibration and
validation.

`python -m simulator measure --backend numpy|cupy --out FILE.json [--quick]` runs
`runner.run_measure`, which starts one worker process per setting (numpy: one thread, all
threads; CuPy: default math, TF32 math) and writes one JSON file, schema
"simulator.measurements/1" (see `records.py`).

VGG16's layer shapes come from its model file, workloads/models/vgg16.yaml (`model_layers`,
`shapes`). The subpackage `cupy_step` holds the CuPy VGG16 training step that
benchmarks/cupy_vgg16_step.py and benchmarks/cupy_layer_kernels.py time.

This package imports only the standard library and numpy at module level; CuPy, torch and
PyYAML are imported inside functions, so it loads on machines without a GPU
(tests/test_measure_imports.py checks it).
"""

from __future__ import annotations

__all__ = ["run_measure"]


def run_measure(backend: str, out: str, quick: bool = False) -> None:
    """Time the kernels of `backend` and write the measurements JSON to `out`."""
    from simulator.measure.runner import run_measure as _run

    _run(backend=backend, out=out, quick=quick)
