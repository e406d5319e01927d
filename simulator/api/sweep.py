"""Running a sweep: every point through the one prediction path, in local processes or on Dask.

`sweep_tasks(experiment, source, base_dir)` validates every point (in this process: a bad one
becomes a failed record at once, with its one-line error) and returns the tasks to run and
those records. `run_point(task)` is the unit of work, a pure function of its task that
returns a JSON-ready record: the point's index, key, label and swept values, its status
(`ok`, `out_of_memory` or `error`), the error line, and its results row (the same row as
`run` writes, less the per-layer times). `run_tasks(tasks, workers, scheduler)` yields the
records as they finish: in this process (one worker), in a pool of local processes, or on a
Dask cluster (`simulator.api.dask_runner`); the records are the same whichever way.
Nothing here writes files.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import signal
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.api.predict import predict_scenario
from simulator.config.schema import Scenario
from simulator.config.sweep import (
    SweepExperiment,
    SweepPoint,
    point_scenario,
    raw_key,
    scenario_key,
    sweep_points,
)
from simulator.core.errors import UserError
from simulator.core.yaml_source import YamlSource
from simulator.results.scenario import scenario_row

DROPPED = ("layers", "description", "published", "simulated_over_published")
PR_SET_PDEATHSIG = 1  # Linux prctl: a signal for this process when its parent dies


@dataclass(frozen=True)
class PointTask:
    """What a worker needs to run one point (picklable: plain data only)."""

    index: int
    key: str
    label: str
    values: list[tuple[str, Any]]  # (dotted path, value), in the order of the file
    data: dict[str, Any]
    base_dir: str | None


def _record(task: PointTask, status: str, error: str | None,
            row: dict[str, Any] | None) -> dict[str, Any]:
    return {"index": task.index, "key": task.key, "label": task.label,
            "values": [list(pair) for pair in task.values],
            "status": status, "error": error, "row": row}


def _task(point: SweepPoint, key: str, base_dir: Path | None) -> PointTask:
    return PointTask(point.index, key, point.label, list(point.values), point.data,
                     str(base_dir) if base_dir is not None else None)


def sweep_tasks(experiment: SweepExperiment, source: YamlSource | None,
                base_dir: Path | None) -> tuple[list[PointTask], list[dict[str, Any]]]:
    """(tasks of the valid points, error records of the invalid ones), both in point order."""
    tasks, failed = [], []
    for point in sweep_points(experiment.sweep):
        try:
            scenario = point_scenario(point, base_dir, source)
        except UserError as err:
            failed.append(_record(_task(point, raw_key(point), base_dir), "error", str(err), None))
            continue
        tasks.append(_task(point, scenario_key(scenario), base_dir))
    return tasks, failed


def _reraise_interrupt(err: BaseException) -> None:
    """Raise the Ctrl-C or SIGTERM (KeyboardInterrupt, SystemExit) behind `err`, if any: a
    signal's handler raises wherever the process is, and pydantic-core turns whatever a
    serializer function raises into a PydanticSerializationError (with the interrupt as its
    cause), which must not become the point's error nor let the process go on."""
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:
        if not isinstance(link, Exception):
            raise link
        seen.add(id(link))
        link = link.__cause__ or link.__context__


def run_point(task: PointTask) -> dict[str, Any]:
    """Simulate one point; any failure is its record's one-line error, never an exception
    (an interrupt stays an interrupt)."""
    try:
        base_dir = Path(task.base_dir) if task.base_dir is not None else None
        scenario = Scenario.model_validate(task.data, context={"base_dir": base_dir})
        prediction = predict_scenario(scenario)
        row = scenario_row(scenario, prediction)
    except UserError as err:
        _reraise_interrupt(err)
        return _record(task, "error", f"sweep point {task.index} ({task.label}): {err}", None)
    except Exception as err:  # noqa: BLE001 - a point's failure must not stop the sweep
        _reraise_interrupt(err)
        message = " ".join(f"{type(err).__name__}: {err}".split())[:1000]
        return _record(task, "error", f"sweep point {task.index} ({task.label}): internal "
                                      f"error: {message}", None)
    for key in DROPPED:
        row.pop(key, None)
    return _record(task, str(row["status"]), row.get("error"), row)


def _worker_init() -> None:
    """A pool worker leaves Ctrl-C to the main process (which stops the pool), dies at once
    on SIGTERM (the pool's terminate(); the sweep's own SIGTERM handler, inherited through
    fork, would raise in the worker wherever it is, and a worker that swallowed it - see
    `_reraise_interrupt` - waited for ever on the task queue's lock, which the stopping pool
    holds) and dies with its parent where the platform can say so (Linux), so a killed
    sweep leaves no workers behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def start_method() -> str:
    """How the pool starts its workers: fork (they share what this process built, copy on
    write) only while this process runs one thread; a lock another thread holds at the fork
    stays held for ever in the child (seen: a worker hung idle under pytest-xdist, whose
    channel thread runs beside the tests), so then a fork server, else spawn."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def run_point_frozen(task: PointTask) -> dict[str, Any]:
    """`run_point`, then what it left alive (the caches' new graphs, layers and steps) moved
    out of the cyclic collector's reach, its own cycles (SimPy's environment) collected
    first: else every object a point keeps is scanned again by the collections that later
    points set off (11% of a ResNet-50 point's CPU, more the longer the sweep). Refcounting
    still frees what the bounded caches let go of; nothing they hold forms a cycle. For the
    local processes, which run points and nothing else (Dask's workers run `run_point`)."""
    record = run_point(task)
    gc.collect(0)
    gc.freeze()
    return record


def _local(tasks: list[PointTask], workers: int) -> Generator[dict[str, Any], None, None]:
    if workers <= 1 or len(tasks) <= 1:
        try:
            yield from map(run_point_frozen, tasks)
        finally:
            gc.unfreeze()
        return
    context = multiprocessing.get_context(start_method())
    chunk = max(1, min(16, len(tasks) // (8 * workers)))  # fewer round trips, still balanced
    # What the workers inherit is moved out of the collector's reach: its passes would touch
    # (and so copy, page by page) the forked memory (gc.freeze's own use; measured on 1,000
    # mlp points: 57% fewer page faults in the workers)
    gc.freeze()
    try:
        with context.Pool(min(workers, len(tasks)), initializer=_worker_init) as pool:
            yield from pool.imap_unordered(run_point_frozen, tasks, chunksize=chunk)
    finally:
        gc.unfreeze()


def run_tasks(tasks: list[PointTask], workers: int,
              scheduler: str | None = None) -> Generator[dict[str, Any], None, None]:
    """The records of `tasks` as they finish (any order): locally or on a Dask scheduler
    (`tcp://HOST:PORT`, or `local-cluster` for a LocalCluster of `workers` processes)."""
    if scheduler is None:
        return _local(tasks, workers)
    from simulator.api.dask_runner import run_on_dask

    return run_on_dask(run_point, tasks, scheduler, workers)
