"""Measure the task-graph workloads on a GPU with PyTorch: LU (torch.linalg.lu_factor, fp64,
the library's getrf) and a tiled GEMM (fp32, TF32 off, one matmul per tile task), timed with
CUDA events after a warm-up; raw times and provenance to --out (JSON). Runs without the
simulator installed (a GPU machine needs only PyTorch).

    python benchmarks/linalg_tasks_gpu.py --out measurements/h200-linalg.json
    python benchmarks/linalg_tasks.py --compare measurements/h200-linalg.json --hardware h200
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

LU_SIZES = (1024, 2048, 4096, 8192, 16384, 32768)
GEMM_CASES = ((2048, 512), (4096, 1024), (8192, 2048), (16384, 4096))
REPS = 3


def _time(torch, fn) -> list[float]:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(REPS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return times


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    records = []
    for n in LU_SIZES:
        a = torch.randn(n, n, dtype=torch.float64, device="cuda")
        t = _time(torch, lambda a=a: torch.linalg.lu_factor(a))
        records.append({"case": "blocked_lu", "n": n, "dtype": "fp64", "times_s": t,
                        "median_s": statistics.median(t), "call": "torch.linalg.lu_factor"})
        del a
    for n, tile in GEMM_CASES:
        a, b = (torch.randn(n, n, device="cuda") for _ in range(2))
        c = torch.zeros(n, n, device="cuda")
        idx = [slice(i, min(i + tile, n)) for i in range(0, n, tile)]

        def run(a=a, b=b, c=c, idx=idx) -> None:
            for i in idx:
                for j in idx:
                    for k in idx:
                        c[i, j] += a[i, k] @ b[k, j]

        t = _time(torch, run)
        records.append({"case": "tiled_gemm", "n": n, "tile": tile, "dtype": "fp32",
                        "times_s": t, "median_s": statistics.median(t),
                        "call": "torch matmul per tile, C += A B (TF32 off)"})
        del a, b, c
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,"
                          "memory.total", "--format=csv,noheader"], capture_output=True,
                         text=True, check=False).stdout.strip()
    doc = {"backend": "pytorch", "date": datetime.datetime.now(datetime.UTC).isoformat(),
           "command": " ".join(["python", *sys.argv]),
           "device": {"kind": "gpu", "name": torch.cuda.get_device_name(), "nvidia_smi": smi},
           "software": {"python": platform.python_version(), "torch": torch.__version__,
                        "cuda": torch.version.cuda},
           "records": records, "notes": f"median of {REPS} after a warm-up, CUDA events"}
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps([(r["case"], r["n"], r.get("tile"), r["median_s"]) for r in records]))


if __name__ == "__main__":
    main()
