"""Measure the task-graph workloads on this machine's CPU: scipy's LU (LAPACK dgetrf through
numpy's BLAS, fp64) and a tiled GEMM in numpy (fp32, one matmul per tile task), and write
the raw times with their provenance (measurements/<name>.json).

    python benchmarks/linalg_tasks.py --out measurements/epyc-2vcpu-linalg.json
    python benchmarks/linalg_tasks.py --compare measurements/epyc-2vcpu-linalg.json \
        --hardware epyc-zen4-2vcpu

`--compare` predicts every measured case with the simulator (the same task graph, the
measuring library's framework profile) and prints the error; nothing is fitted to these
times. Needs scipy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

LU_SIZES = (512, 1024, 2048, 3072, 4096)
GEMM_CASES = ((1024, 256), (2048, 512), (2048, 1024), (3072, 1024))
REPS = 3


def _time(fn: Any, reps: int = REPS) -> list[float]:
    fn()  # warm-up: page faults, BLAS thread start
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _lu(n: int) -> dict[str, Any]:
    import numpy as np
    from scipy.linalg import lu_factor

    a = np.random.default_rng(0).standard_normal((n, n))
    times = _time(lambda: lu_factor(a, overwrite_a=False, check_finite=False))
    return {"case": "blocked_lu", "n": n, "dtype": "fp64", "times_s": times,
            "median_s": statistics.median(times), "call": "scipy.linalg.lu_factor"}


def _tiled_gemm(n: int, tile: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    c = np.zeros((n, n), dtype=np.float32)
    blocks = [slice(i, min(i + tile, n)) for i in range(0, n, tile)]

    def run() -> None:
        for i in blocks:
            for j in blocks:
                for k in blocks:
                    c[i, j] += a[i, k] @ b[k, j]

    times = _time(run)
    return {"case": "tiled_gemm", "n": n, "tile": tile, "dtype": "fp32", "times_s": times,
            "median_s": statistics.median(times), "call": "numpy matmul per tile, C += A B"}


def measure(out: Path) -> None:
    import scipy

    from simulator.measure.provenance import cpu_info, numpy_software, utc_now
    from simulator.report.atomic import write_json_atomic

    load_before = os.getloadavg()
    records = [_lu(n) for n in LU_SIZES] + [_tiled_gemm(n, t) for n, t in GEMM_CASES]
    doc = {"backend": "numpy", "date": utc_now(), "device": cpu_info(),
           "software": {**numpy_software(), "scipy": scipy.__version__},
           "command": " ".join(["python", *sys.argv]), "records": records,
           "load_average_before_after": [load_before[0], os.getloadavg()[0]],
           "notes": "median of 3 after a warm-up; the machine is shared with other jobs "
                    "(load average above, on 2 CPUs)"}
    write_json_atomic(out, doc)
    print(f"wrote {out}")


def compare(path: Path, hardware: str) -> None:
    import json

    from simulator.validate.beyond import summary, task_graph_rows

    rows = task_graph_rows(json.loads(path.read_text()), hardware)
    print(f"{'case':28s} {'measured':>10s} {'predicted':>10s} {'error':>8s}")
    for r in rows:
        spec = r["case"]
        label = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "kind")
        print(f"{spec['kind'] + ' ' + label:28s} {r['measured_s'] * 1e3:8.1f} ms "
              f"{r['predicted_s'] * 1e3:8.1f} ms {r['error']:+7.1%}")
    s = summary(rows)
    print(f"MAPE {s['mape']:.1%}, median {s['median']:.1%}, worst {s['worst']:.1%} over "
          f"{len(rows)} cases")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", type=Path)
    parser.add_argument("--hardware", default="epyc-zen4-2vcpu")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare, args.hardware)
    elif args.out:
        measure(args.out)
    else:
        parser.error("give --out FILE (measure) or --compare FILE")


if __name__ == "__main__":
    main()
