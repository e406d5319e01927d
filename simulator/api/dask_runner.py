"""Sweep points on Dask distributed (the optional `[dask]` extra). `run_on_dask(run_point,
tasks, scheduler, workers)` submits `simulator.api.sweep.run_point` for every task to a
running scheduler (`tcp://HOST:8786`; its workers need this package installed) or to a
`LocalCluster` of `workers` processes, one thread each, started here and closed after;
records are yielded as they finish. The function and its tasks are the local path's, so the
records are the same, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from simulator.core.errors import UserError

LOCAL_CLUSTER = "local-cluster"


def _client(scheduler: str, workers: int) -> tuple[Any, Any]:
    # the address first: a typo is the user's to fix whether or not Dask is installed
    if scheduler != LOCAL_CLUSTER and not scheduler.startswith(("tcp://", "tls://")):
        raise UserError(f"--scheduler: '{scheduler}' is not a scheduler address (tcp://HOST:PORT) "
                        f"or '{LOCAL_CLUSTER}'")
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UserError("--scheduler: Dask is not installed; pip install 'simulator[dask]' "
                        "(or leave out --scheduler to run in local processes)") from None
    if scheduler == LOCAL_CLUSTER:
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="10s"), None
    except (OSError, TimeoutError) as err:
        raise UserError(f"--scheduler: cannot reach {scheduler} ({err})") from None


def _chunks(tasks: list[Any], workers: int) -> list[list[Any]]:
    """Tasks in chunks of up to 16, about 8 per worker at least: one Dask task costs about
    as much scheduling as a small point takes to simulate."""
    size = max(1, min(16, len(tasks) // (8 * max(1, workers))))
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]


def _run_all(run: Callable[[Any], dict[str, Any]], tasks: list[Any]) -> list[dict[str, Any]]:
    return [run(task) for task in tasks]


def run_on_dask(run: Callable[[Any], dict[str, Any]], tasks: list[Any], scheduler: str,
                workers: int) -> Generator[dict[str, Any], None, None]:
    """`run(task)` for every task on the scheduler, yielded as each finishes."""
    client, cluster = _client(scheduler, workers)
    from dask.distributed import as_completed

    try:
        futures = client.map(_run_all, [run] * len(chunks := _chunks(tasks, workers)), chunks,
                             pure=False)
        for _future, records in as_completed(futures, with_results=True):  # results come
            yield from records  # with the notice that a chunk finished, not one request each
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
