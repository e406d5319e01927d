"""`python -m simulator sweep EXPERIMENT.yaml [--out DIR] [--workers N] [--scheduler ADDRESS]
[--retry-failed] [--quick]`: run every point of a sweep and write its output folder.

Order: the file is loaded and every point validated (a bad point is a failed record with its
one-line error; the others go on), the target folder is checked, the journal
(`DIR/points.jsonl`) is opened and the points it already holds are skipped (with
`--retry-failed`, failed points run again); the rest run in local processes (`--workers`,
default: every CPU) or on Dask (`--scheduler`), each record appended to the journal as it
finishes. SIGINT and SIGTERM stop the workers and leave the journal whole (exit 130 / 143):
the same command goes on from there. At the end the whole folder is written at once, as
`run` writes its own. A rich progress bar with ETA runs on a terminal; elsewhere a line per
twentieth of the points.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from simulator.api.sweep import PointTask, run_tasks, sweep_tasks
from simulator.config.sweep import load_sweep
from simulator.core.errors import UserError
from simulator.report.output_folder import Terminated, check_target, default_folder
from simulator.report.results_json import provenance
from simulator.report.sweep_journal import JOURNAL, PointsJournal
from simulator.report.sweep_report import write_sweep
from simulator.report.units import format_count, format_time
from simulator.results.costs import UNPRICED_DEVICE, UNPRICED_NETWORK
from simulator.results.sweep_summary import point_rows, sweep_summary

OnRecord = Callable[[dict[str, Any]], None]
PLAIN_LINES = 20  # progress lines printed without a terminal


@contextmanager
def point_progress(total: int, stream: TextIO | None = None) -> Iterator[OnRecord]:
    """Yield the callback called after each finished point."""
    stream = stream or sys.stdout
    if not stream.isatty():
        done = [0]

        def plain(record: dict[str, Any]) -> None:
            done[0] += 1
            if record["status"] == "error":
                print(f"  {record['error']}", file=stream, flush=True)
            if done[0] == total or done[0] % max(1, total // PLAIN_LINES) == 0:
                print(f"[{done[0]}/{total}] points done", file=stream, flush=True)

        yield plain
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=stream)) as bar:
        task = bar.add_task("sweeping", total=total)

        def fancy(record: dict[str, Any]) -> None:
            bar.update(task, advance=1, description=record["label"][:40])
            if record["status"] == "error":
                bar.console.print(record["error"], markup=False, highlight=False)

        yield fancy


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(128 + signal.SIGTERM)


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM stops the sweep like Ctrl-C does (workers stopped, journal closed), exit 143."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def pending_tasks(tasks: list[PointTask], records: dict[str, dict[str, Any]],
                  retry_failed: bool) -> list[PointTask]:
    """The tasks to run: not in the journal (or failed there, with --retry-failed), each key
    once (two points with one configuration run once)."""
    out: dict[str, PointTask] = {}
    for task in tasks:
        old = records.get(task.key)
        if old is None or (retry_failed and old["status"] == "error"):
            out.setdefault(task.key, task)
    return list(out.values())


def _as_point(record: dict[str, Any], task: PointTask) -> dict[str, Any]:
    """A journal record placed at this sweep's point (a point moves when the grid grows)."""
    return {**record, "index": task.index, "label": task.label,
            "values": [list(pair) for pair in task.values]}


def run_points(target: Path, tasks: list[PointTask], invalid: list[dict[str, Any]],
               workers: int, scheduler: str | None, retry_failed: bool) -> list[dict[str, Any]]:
    """Run what the journal lacks; returns every point's record, in point order."""
    with sigterm_unwinds(), PointsJournal(target) as journal:
        for record in invalid:
            if record["key"] not in journal.records:
                journal.append(record)
        todo = pending_tasks(tasks, journal.records, retry_failed)
        for record in invalid:
            print(f"  {record['error']}", flush=True)
        print(f"{len(tasks) + len(invalid)} points: {len(invalid)} invalid, "
              f"{len(tasks) - len(todo)} done before, {len(todo)} to run", flush=True)
        try:
            with point_progress(len(todo)) as on_record, \
                    closing(run_tasks(todo, workers, scheduler)) as results:
                for record in results:
                    journal.append(record)
                    on_record(record)
        except (KeyboardInterrupt, Terminated):
            print(f"stopped: {len(journal.records)} points are in {target / JOURNAL}; run the "
                  "same command again to go on", file=sys.stderr, flush=True)
            raise
        done = [_as_point(journal.records[t.key], t) for t in tasks]
    return sorted(done + invalid, key=lambda r: r["index"])


def format_value(key: str, value: float) -> str:
    if key.endswith("_per_usd"):  # samples per second per dollar
        return f"{value:,.4g} samples/s per $"
    if key.endswith("_usd"):
        return f"${value:,.0f}" if value >= 100 else f"${value:.2g}"
    if key == "energy_j":
        return f"{value / 3.6e6:,.4g} kWh" if value >= 3.6e5 else f"{value:,.4g} J"
    return format_time(value) if key.endswith("_s") else format_count(value)


def _short_reasons(bases: list[str]) -> list[str]:
    """What the hardware-cost bases of unpriced points have in common, in a few words."""
    short = []
    if any(UNPRICED_DEVICE in b for b in bases):
        short.append("no published price for the device: docs/costs.md, 'Devices without a "
                     "price'")
    if any(UNPRICED_NETWORK in b for b in bases):
        short.append("the network between nodes is not priced for that link "
                     "(hardware_models/catalog/costs.yaml)")
    return short or bases


def _best_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for objective, winner in summary["best"].items():
        if winner is None:
            lines.append(f"  {objective}: no point meets the constraints")
            continue
        shown = format_value(objective, winner[objective])
        lines.append(f"  lowest {objective}" if not objective.endswith("_per_usd")
                     and objective != "samples_per_s" else f"  highest {objective}")
        lines[-1] += f": {shown} at point {winner['index']} ({winner['label']})"
    for objective, missing in summary.get("unknown", {}).items():
        why = _short_reasons(missing.get("why", []))
        lines.append(f"  left out of {objective}: {missing['points']} points without one "
                     f"({', '.join(missing['hardware'])}"
                     + (f"; {'; '.join(why)}" if why else "") + ")")
    return lines


def summary_text(summary: dict[str, Any]) -> str:
    head = (f"{summary['points']} points: {summary['ok']} ran, {summary['out_of_memory']} out "
            f"of memory, {summary['failed']} failed; {summary['feasible']} meet the "
            "constraints")
    return "\n".join([head, "best under the constraints:", *_best_lines(summary)])


def run_sweep_cli(experiment: str, out: str | None, workers: int | None,
                  scheduler: str | None, retry_failed: bool, quick: bool) -> None:
    if workers is not None and workers < 1:
        raise UserError(f"--workers: must be at least 1, got {workers}")
    path = Path(experiment)
    config, source = load_sweep(path)
    target = Path(out) if out else default_folder(path)
    check_target(target)
    tasks, invalid = sweep_tasks(config, source, path.parent)
    records = run_points(target, tasks, invalid, workers or os.cpu_count() or 1, scheduler,
                         retry_failed)
    rows = point_rows(records, config.sweep)
    summary = sweep_summary(rows, config.sweep)
    print(f"writing {target} ...", flush=True)
    write_sweep(target, config, records, rows, summary, provenance(config, str(path), quick),
                figures=not quick)
    print(summary_text(summary))
    print(f"results written to {target}")
