"""Points per second of a sweep of single-device points: in this process, on local worker
processes and on a 2-worker Dask LocalCluster (when Dask is installed).

    python benchmarks/sweep_speed.py [--points 1000] [--workers 2] [--repeat 1]

The sweep: an MLP training step on a GTX 1080 over `--points` batch sizes (a single-device
point, the cheapest kind, and every point a graph of its own). Wall time from the first task
submitted to the last record back, after the points are validated (validation is timed
apart); the local lines add the CPU time of every process (this one and its workers) per
point, which a shared machine does not inflate as it does wall time. The LocalCluster is
started before its clock starts (its start-up is printed apart) and reached by its address,
as `--scheduler tcp://...` reaches a running cluster. `--repeat N` runs each line N times
and prints the median. Nothing is written.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended."""
    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_cpu(tasks: list, workers: int, scheduler: str | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of every process) to run `tasks`."""
    start, cpu = time.perf_counter(), _cpu_s()
    count = sum(1 for _ in run_tasks(tasks, workers, scheduler))
    assert count == len(tasks)
    return time.perf_counter() - start, _cpu_s() - cpu


def timed(tasks: list, workers: int, scheduler: str | None) -> float:
    return timed_cpu(tasks, workers, scheduler)[0]


def cpu_per_point_s(tasks: list) -> float:
    """CPU seconds of this process per point, after a first point warmed the caches."""
    sum(1 for _ in run_tasks(tasks[:1], 1))
    start = time.process_time()
    sum(1 for _ in run_tasks(tasks[1:], 1))
    return (time.process_time() - start) / max(1, len(tasks) - 1)


@contextmanager
def local_cluster(workers: int) -> Iterator[str | None]:
    """The address of a LocalCluster of `workers` processes (None without Dask)."""
    try:
        from dask.distributed import LocalCluster
    except ImportError:
        print("(Dask not installed: pip install '.[dask]' for the LocalCluster line)")
        yield None
        return
    start = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        print(f"(LocalCluster of {workers} workers started in "
              f"{time.perf_counter() - start:.2f} s, not counted below)")
        yield cluster.scheduler_address


def report(name: str, points: int, workers: int, runs: list[tuple[float, float]],
           cpu: bool) -> None:
    seconds = statistics.median(wall for wall, _ in runs)
    line = (f"{name:32s} {seconds:7.2f} s  {points / seconds:8,.0f} points/s  "
            f"{1e3 * seconds * workers / points:6.2f} ms of worker time per point")
    if cpu:
        cpu_ms = 1e3 * statistics.median(c for _, c in runs) / points
        line += f"  {cpu_ms:5.2f} ms CPU per point (all processes)"
    print(line + (f"  (median of {len(runs)})" if len(runs) > 1 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        path = sweep_file(Path(tmp), args.points)
        start = time.perf_counter()
        config, source = load_sweep(path)
        tasks, invalid = sweep_tasks(config, source, path.parent)
        validate_s = time.perf_counter() - start
    assert not invalid
    print(f"{len(tasks)} single-device points (mlp, gtx-1080); validating them: "
          f"{validate_s:.2f} s ({len(tasks) / validate_s:,.0f} points/s); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"CPU per point in this process, after the first: "
          f"{1e3 * cpu_per_point_s(tasks):.2f} ms")
    for name, workers in (("this process", 1), (f"{args.workers} local processes", args.workers)):
        runs = [timed_cpu(tasks, workers, None) for _ in range(args.repeat)]
        report(name, len(tasks), workers, runs, cpu=True)
    with local_cluster(args.workers) as address:
        if address is not None:
            runs = [timed_cpu(tasks, args.workers, address) for _ in range(args.repeat)]
            report(f"Dask LocalCluster, {args.workers} workers", len(tasks), args.workers, runs,
                   cpu=False)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
