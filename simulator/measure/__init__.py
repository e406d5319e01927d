"""Measurement of real kernels (numpy on a CPU, CuPy on an NVIDIA GPU) for calibration and validation.

`python -m simulator measure --backend numpy|cupy --out FILE.json [--quick]` runs
`runner.run_measure`, which starts one worker process per setting (numpy: one thread, all
threads; CuPy: default math, TF32 math) and writes one JSON file, schema
"simulator.measurements/1" (see `records.py`).

This package imports only the standard library and numpy at module level; CuPy is imported
inside functions, so it loads on machines without a GPU.
"""

from __future__ import annotations

__all__ = ["run_measure"]


def run_measure(backend: str, out: str, quick: bool = False) -> None:
    """Time the kernels of `backend` and write the measurements JSON to `out`."""
    from simulator.measure.runner import run_measure as _run

    _run(backend=backend, out=out, quick=quick)
