"""`run_measure`: checks the backend, runs one worker process per setting, writes the JSON.

Settings: numpy with one thread and with every usable CPU (thread counts go to the BLAS
through OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, ... in the worker's
environment); CuPy with default float32 math (CUPY_TF32=0) and with TF32 (CUPY_TF32=1, GEMM
and convolution only). The file is rewritten after each worker, so a run cut short keeps what
it measured. In --quick mode any error is fatal; in a full run a failing section or worker is
recorded under software.settings[].failures and the rest goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from simulator.measure import provenance
from simulator.measure.records import SCHEMA
from simulator.measure.worker import MARK
from simulator.report.atomic import write_json_atomic

BACKENDS = ("numpy", "cupy", "pytorch")
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
METHOD = {
    "cpu": "time.perf_counter; warm-up, then 3-10 repetitions within ~0.5 s per case",
    "gpu": "CUDA events on the current stream; warm-up; each repetition queued behind a spin "
    "kernel so launches are back to back; short kernels repeated to fill ~1 ms",
    "copies": "cudaMemcpy (synchronous), host clock",
}


def _require_gpu() -> None:
    """UserError unless CuPy imports and sees a CUDA device."""
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001 - any import failure means no CuPy here
        raise UserError(
            f"--backend cupy needs CuPy and an NVIDIA GPU, but CuPy does not import "
            f"({type(exc).__name__}); install cupy-cuda12x or use --backend numpy"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - no driver, no device, ...
        raise UserError(
            f"--backend cupy found no usable GPU ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); use --backend numpy"
        ) from None
    if count < 1:
        raise UserError("--backend cupy found no CUDA device; use --backend numpy")


def _settings(backend: str, quick: bool) -> list[tuple[dict[str, Any], dict[str, str]]]:
    base = {"backend": backend, "quick": quick, "strict": quick}
    if backend == "numpy":
        counts = sorted({1, provenance.usable_cpus()})
        return [
            ({**base, "threads": n, "variant": "default"}, {var: str(n) for var in _THREAD_VARS})
            for n in counts
        ]
    return [
        ({**base, "threads": None, "variant": variant}, {"CUPY_TF32": tf32})
        for variant, tf32 in (("default", "0"), ("tf32", "1"), ("bf16", "0"))
    ]


def _run_worker(cfg: dict[str, Any], env_update: dict[str, str]) -> dict[str, Any]:
    """Run one worker process and return its parsed result (stderr passes through)."""
    env = dict(os.environ, **env_update)
    root = str(Path(__file__).resolve().parents[2])  # the directory holding simulator/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "simulator.measure.worker", json.dumps(cfg)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"measure worker {cfg} exited with status {proc.returncode}")
    return json.loads(lines[-1][len(MARK) :])


def _document(
    backend: str,
    out: str,
    quick: bool,
    date: str,
    results: list[tuple[dict[str, Any], dict[str, str], dict[str, Any], float]],
) -> dict[str, Any]:
    done = [r for r in results if r[2]]
    first = done[-1][2] if backend == "numpy" and done else (done[0][2] if done else {})
    software = dict(first.get("software", {}))
    software.pop("threadpools", None)
    software.update(
        argv=provenance.argv(),
        method=METHOD,
        settings=[
            {
                "threads": cfg["threads"],
                "variant": cfg["variant"],
                "env": env,
                "wall_s": round(wall, 1),
                "records": len(res.get("records", [])),
                "failures": res.get("failures", ["worker failed"]),
                "notes": res.get("notes", {}),
                "threadpools": res.get("software", {}).get("threadpools"),
            }
            for cfg, env, res, wall in results
        ],
    )
    return {
        "schema": SCHEMA,
        "backend": backend,
        "date": date,
        "command": provenance.command_line(backend, out, quick),
        "device": first.get("device", {}),
        "software": software,
        "records": [rec for _, _, res, _ in results for rec in res.get("records", [])],
    }


def _run_pytorch(out: str, quick: bool) -> None:
    """PyTorch's own kernels, in this process (see simulator.measure.torch_kernels)."""
    try:
        import torch
    except ImportError:
        raise UserError("--backend pytorch needs PyTorch; use --backend numpy") from None
    if not torch.cuda.is_available():
        raise UserError("--backend pytorch needs a CUDA GPU; use --backend numpy")
    from simulator.measure import torch_kernels

    date = provenance.utc_now()
    records, software = torch_kernels.measure(quick)
    software.update(argv=provenance.argv(), cpu=provenance.cpu_info())
    write_json_atomic(Path(out), {
        "schema": SCHEMA, "backend": "pytorch", "date": date,
        "command": provenance.command_line("pytorch", out, quick),
        "device": torch_kernels.device_info(torch), "software": software, "records": records})


def run_measure(backend: str, out: str, quick: bool = False) -> None:
    """Time the kernels of `backend` ("numpy" or "cupy") and write the JSON file `out`."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend '{backend}'; valid backend names: {', '.join(BACKENDS)}")
    if backend == "cupy":
        _require_gpu()
    if backend == "pytorch":
        _run_pytorch(out, quick)
        return
    date, results = provenance.utc_now(), []
    for cfg, env in _settings(backend, quick):
        print(
            f"measure: {backend} {cfg['variant']} threads={cfg['threads']}",
            file=sys.stderr,
            flush=True,
        )
        start = time.perf_counter()
        try:
            result = _run_worker(cfg, env)
        except RuntimeError:
            if quick:
                raise
            result = {}
        results.append((cfg, env, result, time.perf_counter() - start))
        if any(r[2] for r in results):
            write_json_atomic(Path(out), _document(backend, out, quick, date, results))
    if not any(r[2].get("records") for r in results):
        raise RuntimeError(f"measure {backend}: every worker failed; nothing written to {out}")
