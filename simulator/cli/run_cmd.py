"""`python -m simulator run EXPERIMENT.yaml [--out DIR] [--quick]`: run every scenario of an
experiment and write results.json, results.csv, trace.json and figures into DIR.

Order matters for the no-half-results promise: the file is validated, the target folder is
checked and every scenario is simulated before anything is written; then the report
package writes the whole folder at once. `--quick` skips the figures (the slow part); the
numbers, CSV and trace are the same as in a full run, and provenance records `quick`.
On a terminal a rich progress bar runs while scenarios are simulated; otherwise (logs, CI,
pipes) each finished scenario prints one plain line. A table of headline numbers closes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from simulator.api.experiment import run_experiment
from simulator.config.schema import load_experiment
from simulator.report.output_folder import check_target, default_folder, write_run
from simulator.report.published_table import published_table
from simulator.report.results_json import provenance
from simulator.report.units import format_count, format_time
from simulator.results.comparisons import comparison_rows, passes_implied

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
    header = (f"{'scenario':{width}s}  {'step time':>10s}  {'samples/s':>10s}  "
              f"{'bottleneck':>13s}  {'time to train':>13s}")
    lines = [header]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['name']:{width}s}  {'out of memory':>10s}")
            continue
        train = format_time(r["time_to_train_s"]) if r["time_to_train_s"] else "-"
        lines.append(f"{r['name']:{width}s}  {format_time(r['step_time_s']):>10s}  "
                     f"{format_count(r['samples_per_s']):>10s}  {r['bottleneck']:>13s}  "
                     f"{train:>13s}")
    return "\n".join(lines)


def run_experiment_cli(experiment: str, out: str | None, quick: bool) -> None:
    path = Path(experiment)
    config = load_experiment(path)
    target = Path(out) if out else default_folder(path)
    check_target(target)
    with scenario_progress(len(config.scenarios)) as on_done:
        runs = run_experiment(config, on_done)
    print(f"writing {target} ...", flush=True)
    rows = [run.row for run in runs]
    findings: dict[str, Any] = {"comparisons": comparison_rows(config, rows),
                "passes_implied": passes_implied(rows), "assumptions": list(config.assumptions)}
    write_run(target, config.title, config.description,
              [(run.row, run.prediction) for run in runs],
              provenance(config, str(path), quick), config.outputs, figures=not quick,
              findings=findings)
    print(summary_table(rows))
    published = published_table(rows, findings["comparisons"], findings["passes_implied"],
                                findings["assumptions"])
    if published:
        print("\npublished vs simulated:\n" + published)
    print(f"results written to {target}")
