"""`python -m simulator run EXPERIMENT.yaml [--out DIR] [--quick]`: run every scenario of an
experiment and write results.json, results.csv, trace.json and figures into DIR.

Order matters for the no-half-results promise: the file is validated, the target folder is
checked and every scenario is simulated before anything is written; then the report
package writes the whole folder at once. `--quick` skips the figures (the slow part); the
numbers, CSV and trace are the same as in a full run, and provenance records `quick`.
"""

from __future__ import annotations

from pathlib import Path

from simulator.config import load_experiment
from simulator.experiment import check_runnable, run_experiment
from simulator.progress import scenario_progress, summary_table
from simulator.provenance import provenance
from simulator.report.output_folder import check_target, default_folder
from simulator.report.run_outputs import write_run


def run_experiment_cli(experiment: str, out: str | None, quick: bool) -> None:
    path = Path(experiment)
    config = load_experiment(path)
    target = Path(out) if out else default_folder(path)
    check_target(target)
    check_runnable(config)
    with scenario_progress(len(config.scenarios)) as on_done:
        runs = run_experiment(config, on_done)
    rows = [run.row for run in runs]
    write_run(target, config.title, config.description,
              [(run.row, run.prediction) for run in runs],
              provenance(config, str(path), quick), config.outputs, figures=not quick)
    print(summary_table(rows))
    print(f"results written to {target}")
