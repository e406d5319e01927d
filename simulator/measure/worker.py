"""Worker process: runs the sweep of one setting and prints its records as one JSON line.

`python -m simulator.measure.worker '{"backend": ..., "quick": ..., "threads": ...,
"variant": "default"|"tf32"|"bf16", "strict": ...}'`. The runner starts one worker per
setting, because thread counts (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, ...) and CuPy's TF32 mode
(CUPY_TF32) are read from the environment once per process. Progress goes to stderr;
stdout carries only the result line, prefixed by MARK.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from simulator.measure import conv, copies, elementwise, gemm, provenance
from simulator.measure.backend import Backend
from simulator.measure.plan import Plan, plan_for

MARK = "@@simulator.measure.result@@ "
Section = tuple[str, Callable[[], list[dict[str, Any]]]]


def matmul_rel_err(backend: Backend) -> float:
    """Relative error of a float32 product against float64: ~1e-7 in FP32, ~1e-4 in TF32."""
    xp = backend.xp
    a, b = backend.rand((512, 512), "fp32"), backend.rand((512, 512), "fp32")
    ref = a.astype(xp.float64) @ b.astype(xp.float64)
    return float(xp.linalg.norm((a @ b).astype(xp.float64) - ref) / xp.linalg.norm(ref))


def _checks(backend: Backend, variant: str, notes: dict[str, Any]) -> list[dict[str, Any]]:
    err = matmul_rel_err(backend)
    notes[f"{variant}_float32_matmul_rel_err"] = err
    if variant == "tf32" and err < 2e-5:
        raise RuntimeError(f"CUPY_TF32=1 had no effect (float32 matmul error {err:.1e})")
    if variant == "default":
        elementwise.check_pool(backend)
    return []


def _per_dtype(
    backend: Backend, plan: Plan, dtypes: tuple[str, ...], notes: dict[str, Any]
) -> list[Section]:
    """One section per kind and dtype, so that a failure loses as little as possible."""
    sections: list[Section] = []
    for d in dtypes:
        if d in plan.elementwise_dtypes:
            p = replace(plan, elementwise_dtypes=(d,))
            sections.append((f"elementwise {d}", partial(elementwise.run_elementwise, backend, p)))
            sections.append((f"pool {d}", partial(elementwise.run_pool, backend, p)))
    for d in dtypes:
        sections.append((f"gemm {d}", partial(gemm.run_gemm, backend, plan, (d,), notes)))
    for d in dtypes:
        if d in plan.conv_dtypes:
            sections.append((f"conv {d}", partial(conv.run_conv, backend, plan, (d,))))
    return sections


def _sections(backend: Backend, plan: Plan, variant: str, notes: dict[str, Any]) -> list[Section]:
    checks: Section = ("checks", partial(_checks, backend, variant, notes))
    if variant == "tf32":
        return [checks, *_per_dtype(backend, plan, ("tf32",), notes)]
    if variant == "bf16":  # its own process: a fault in the raw cuBLAS call loses nothing else
        return _per_dtype(backend, plan, ("bf16",), notes)
    sections: list[Section] = [checks, ("launch", partial(copies.run_launch, backend))]
    if backend.is_gpu:
        sections.append(("copies", partial(copies.run_copies, backend, plan)))
    dtypes = tuple(d for d in plan.gemm_dtypes if d not in ("tf32", "bf16"))
    return sections + _per_dtype(backend, plan, dtypes, notes)


def _loadavg() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def run_setting(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run every section of one setting; in strict mode the first error propagates."""
    backend = Backend(cfg["backend"], cfg["quick"], cfg.get("threads"))
    variant = cfg.get("variant", "default")
    notes: dict[str, Any] = {"loadavg_at_start": _loadavg()}  # other work on the host skews times
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    tag = f"[{cfg['backend']} {variant} threads={cfg.get('threads')}]"
    for name, section in _sections(backend, plan_for(cfg["backend"], cfg["quick"]), variant, notes):
        start = time.perf_counter()
        try:
            records += section()
        except Exception as exc:
            if cfg.get("strict"):
                raise
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
            if name == "checks" and variant == "tf32":
                break  # without TF32 in effect, "tf32" records would be mislabelled
        print(
            f"{tag} {name}: {len(records)} records so far, {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    if backend.is_gpu:
        device, software = provenance.gpu_info(backend.xp), provenance.gpu_software(backend.xp)
    else:
        device, software = provenance.cpu_info(), provenance.numpy_software()
    software["timer"] = type(backend.timer).__name__
    notes["loadavg_at_end"] = _loadavg()
    if backend.is_gpu:
        notes["spin_kernel"] = backend.gpu_timer.spin_ok
    return {
        "records": records,
        "notes": notes,
        "failures": failures,
        "device": device,
        "software": software,
    }


def main(argv: list[str]) -> int:
    cfg = json.loads(argv[1])
    result = run_setting(cfg)
    sys.stdout.write(MARK + json.dumps(result, allow_nan=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
