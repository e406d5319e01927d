"""Points per second and CPU time per point of a sweep of single-device points: in this
process, on local worker processes and on a 2-worker Dask LocalCluster (when Dask is
installed).

    python benchmarks/sweep_speed.py [--points 1000] [--workers 2] [--repeat 3]
                                     [--model mlp] [--device gtx-1080]

The sweep: a training step of `--model` on `--device` over `--points` batch sizes (1, 2, ...;
a single-device point, and every point a graph of its own: nothing is reused from one point
to the next but what does not depend on the batch). Wall time runs from the first task
submitted to the last record back, after the points are validated (validation is timed
apart). Beside it each line prints the CPU time per point of the processes that ran the
points (the workers' own process CPU time: the local pool's, read from the kernel once the
pool is reaped, or each Dask worker's from /proc before and after) and of this
process (submitting tasks, taking records back). A machine shared with other jobs stretches
wall time by their load, CPU time far less, so the CPU figures are the ones to compare
between runs. `--repeat N` runs each line N times and prints medians. Nothing is written.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import NamedTuple

from simulator.api.predict import forget_cached
from simulator.api.sweep import run_tasks, sweep_tasks
from simulator.config.sweep import load_sweep


class Run(NamedTuple):
    wall_s: float
    worker_cpu_s: float  # the processes that ran the points
    own_cpu_s: float  # this process, where the points ran elsewhere (else 0)


def sweep_file(folder: Path, points: int, model: str = "mlp", device: str = "gtx-1080") -> Path:
    path = folder / "speed.yaml"
    batches = ", ".join(str(b) for b in range(1, points + 1))
    path.write_text(f"title: speed\nsweep:\n  base: {{workload: {{model: {model}, batch: 1}}, "
                    f"hardware: {{device: {device}}}}}\n  grid:\n    workload.batch: [{batches}]\n")
    return path


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _count(tasks: list, workers: int, scheduler: str | None) -> None:
    forget_cached()  # every run from cold points: none of a previous run's graphs or costs
    count = sum(1 for _ in run_tasks(tasks, workers, scheduler))
    assert count == len(tasks)


def timed_local(tasks: list, workers: int) -> Run:
    """Run `tasks` in this process (1 worker) or a local pool; the pool's workers are
    reaped when it closes, so their CPU time is in RUSAGE_CHILDREN after."""
    start = time.perf_counter()
    own, children = _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    _count(tasks, workers, None)
    wall = time.perf_counter() - start
    own = _cpu_s(resource.RUSAGE_SELF) - own
    children = _cpu_s(resource.RUSAGE_CHILDREN) - children
    return Run(wall, own, 0.0) if workers <= 1 else Run(wall, children, own)


def timed(tasks: list, workers: int, scheduler: str | None) -> float:
    """Wall seconds to run `tasks`."""
    if scheduler is None:
        return timed_local(tasks, workers).wall_s
    start = time.perf_counter()
    _count(tasks, workers, scheduler)
    return time.perf_counter() - start


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a running process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_dask(tasks: list, workers: int) -> Run | None:
    """Run `tasks` on a fresh LocalCluster of `workers` processes, reached by its address as
    `--scheduler tcp://...` reaches a running one; its start-up and a first point per worker
    (which imports the package there) are not timed; the workers' CPU time is read from
    /proc before and after."""
    try:
        from dask.distributed import LocalCluster
    except ImportError:
        return None
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        pids = [nanny.process.process.pid for nanny in cluster.workers.values()]
        # a first point per worker, untimed: it imports the package there
        sum(1 for _ in run_tasks(tasks[:workers], workers, cluster.scheduler_address))
        before = sum(map(_process_cpu_s, pids))
        start, own = time.perf_counter(), _cpu_s(resource.RUSAGE_SELF)
        _count(tasks, workers, cluster.scheduler_address)
        wall, own = time.perf_counter() - start, _cpu_s(resource.RUSAGE_SELF) - own
        return Run(wall, sum(map(_process_cpu_s, pids)) - before, own)


def cpu_per_point_s(tasks: list) -> float:
    """CPU seconds of this process per point, after a first point warmed the caches."""
    forget_cached()
    sum(1 for _ in run_tasks(tasks[:1], 1))
    start = time.process_time()
    sum(1 for _ in run_tasks(tasks[1:], 1))
    return (time.process_time() - start) / max(1, len(tasks) - 1)


def report(name: str, points: int, runs: list[Run]) -> None:
    wall = statistics.median(r.wall_s for r in runs)
    worker_ms = 1e3 * statistics.median(r.worker_cpu_s for r in runs) / points
    own_ms = 1e3 * statistics.median(r.own_cpu_s for r in runs) / points
    line = (f"{name:28s} {points / wall:7,.0f} points/s ({wall:5.2f} s)  "
            f"CPU per point: {worker_ms:5.3f} ms in the workers")
    if own_ms:
        line += f", {own_ms:5.3f} ms in this process"
    print(line + (f"  (medians of {len(runs)})" if len(runs) > 1 else ""))


def repeated(run: Callable[[], Run], times: int) -> list[Run]:
    return [run() for _ in range(times)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--device", default="gtx-1080")
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        path = sweep_file(Path(tmp), args.points, args.model, args.device)
        start = time.perf_counter()
        config, source = load_sweep(path)
        tasks, invalid = sweep_tasks(config, source, path.parent)
        validate_s = time.perf_counter() - start
    assert not invalid
    print(f"{len(tasks)} single-device points ({args.model} training steps on {args.device}, "
          f"batch 1 to {args.points}); validating them: {validate_s:.2f} s "
          f"({len(tasks) / validate_s:,.0f} points/s); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"CPU per point in this process, after the first: "
          f"{1e3 * cpu_per_point_s(tasks):.3f} ms")
    report("this process", len(tasks), repeated(lambda: timed_local(tasks, 1), args.repeat))
    report(f"{args.workers} local processes", len(tasks),
           repeated(lambda: timed_local(tasks, args.workers), args.repeat))
    dask_runs = [run for _ in range(args.repeat)
                 if (run := timed_dask(tasks, args.workers)) is not None]
    if dask_runs:
        report(f"Dask LocalCluster, {args.workers} workers", len(tasks), dask_runs)
    else:
        print("(Dask not installed: pip install '.[dask]' for the LocalCluster line)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
