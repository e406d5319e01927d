"""Points per second of a sweep of single-device points: in this process, on local worker
processes and on a 2-worker Dask LocalCluster (when Dask is installed).

    python benchmarks/sweep_speed.py [--points 1000] [--workers 2]

The sweep: an MLP training step on a GTX 1080 over `--points` batch sizes (a single-device
point, the cheapest kind). Wall time from the first task submitted to the last record back,
after the points are validated (validation is timed apart), and the CPU time of one process
per point after the first (wall time on a shared machine includes waiting for a core);
nothing is written.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from simulator.api.sweep import run_tasks, sweep_tasks
from simulator.config.sweep import load_sweep


def sweep_file(folder: Path, points: int) -> Path:
    path = folder / "speed.yaml"
    batches = ", ".join(str(b) for b in range(1, points + 1))
    path.write_text("title: speed\nsweep:\n  base: {workload: {model: mlp, batch: 1}, "
                    f"hardware: {{device: gtx-1080}}}}\n  grid:\n    workload.batch: [{batches}]\n")
    return path


def timed(tasks: list, workers: int, scheduler: str | None) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in run_tasks(tasks, workers, scheduler))
    assert count == len(tasks)
    return time.perf_counter() - start


def cpu_per_point_s(tasks: list) -> float:
    """CPU seconds of this process per point, after a first point warmed the caches."""
    sum(1 for _ in run_tasks(tasks[:1], 1))
    start = time.process_time()
    sum(1 for _ in run_tasks(tasks[1:], 1))
    return (time.process_time() - start) / max(1, len(tasks) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        path = sweep_file(Path(tmp), args.points)
        start = time.perf_counter()
        config, source = load_sweep(path)
        tasks, invalid = sweep_tasks(config, source, path.parent)
        validate_s = time.perf_counter() - start
    assert not invalid
    print(f"{len(tasks)} single-device points (mlp, gtx-1080); validating them: "
          f"{validate_s:.2f} s ({len(tasks) / validate_s:,.0f} points/s)")
    print(f"CPU per point in this process, after the first: "
          f"{1e3 * cpu_per_point_s(tasks):.2f} ms")
    runs = [("this process", 1, None), (f"{args.workers} local processes", args.workers, None)]
    try:
        import distributed  # noqa: F401

        runs.append((f"Dask LocalCluster, {args.workers} workers", args.workers, "local-cluster"))
    except ImportError:
        print("(Dask not installed: pip install '.[dask]' for the LocalCluster line)")
    for name, workers, scheduler in runs:
        seconds = timed(tasks, workers, scheduler)
        print(f"{name:32s} {seconds:7.2f} s  {len(tasks) / seconds:8,.0f} points/s  "
              f"{1e3 * seconds * workers / len(tasks):6.2f} ms of worker time per point")


if __name__ == "__main__":
    main()
