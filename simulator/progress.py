"""Progress of a run on the terminal: a rich progress bar when stdout is a terminal, one
plain line per finished scenario otherwise (logs, CI, pipes), and the closing summary table.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TextIO

from simulator.report.figure_style import format_count, format_time

OnDone = Callable[[int, Any], None]


def outcome(row: dict[str, Any]) -> str:
    """A few words on one scenario's result."""
    if row["status"] != "ok":
        return f"out of memory ({row['memory_peak_bytes'] / 1e9:.2f} GB needed, " \
               f"{row['memory_capacity_bytes'] / 1e9:.2f} GB available)"
    return (f"step {format_time(row['step_time_s'])}, "
            f"{format_count(row['samples_per_s'])} samples/s, {row['bottleneck']}-bound")


@contextmanager
def scenario_progress(total: int, stream: TextIO | None = None) -> Iterator[OnDone]:
    """Yield the callback `run_experiment` calls after each scenario."""
    stream = stream or sys.stdout
    if not stream.isatty():
        def plain(index: int, run: Any) -> None:
            print(f"[{index + 1}/{total}] {run.row['name']}: {outcome(run.row)}", file=stream,
                  flush=True)

        yield plain
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(file=stream), transient=False) as bar:
        task = bar.add_task("simulating", total=total)

        def fancy(index: int, run: Any) -> None:
            bar.update(task, advance=1, description=f"simulated {run.row['name']}")

        yield fancy


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width table of the headline numbers, one line per scenario."""
    width = max(len("scenario"), *(len(r["name"]) for r in rows))
    lines = [f"{'scenario':{width}s}  {'step time':>10s}  {'samples/s':>10s}  "
             f"{'bottleneck':>13s}  {'time to train':>13s}"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['name']:{width}s}  {'out of memory':>10s}")
            continue
        train = format_time(r["time_to_train_s"]) if r["time_to_train_s"] else "-"
        lines.append(f"{r['name']:{width}s}  {format_time(r['step_time_s']):>10s}  "
                     f"{format_count(r['samples_per_s']):>10s}  {r['bottleneck']:>13s}  "
                     f"{train:>13s}")
    return "\n".join(lines)
