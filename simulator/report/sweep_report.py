"""The output folder of a finished sweep, written all at once like `run`'s. Files:
`points.jsonl` (the journal rewritten in point order: one record per point, whatever order
they finished in), `points.csv` (one flat row per point: index, label, a column per swept
field (`swept.hardware.count`), status, error, feasible, the headline numbers),
`results.json` (title, description, the summary: counts, best per objective, Pareto fronts,
scaling curves; the rows; provenance), `points.parquet` where pyarrow is installed (the rows
of points.csv), and the figures (`simulator.report.plot_sweep`), and report.md / report.html
(the run's page writer, `simulator.report.report_page`: the points' table, the figures, the
provenance). Everything but `provenance.date` in results.json is the same, byte for byte,
for the same sweep, whatever the number of workers or the scheduler.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from simulator.config.sweep import SweepExperiment
from simulator.report.atomic import write_bytes_atomic, write_text_atomic
from simulator.report.output_folder import staged_folder
from simulator.report.report_page import write_report
from simulator.report.results_csv import csv_text
from simulator.report.results_json import write_results_json
from simulator.report.sweep_journal import JOURNAL, record_line

TABLE = "points.csv"
PARQUET = "points.parquet"
SWEPT = "swept."  # prefix of the columns of swept fields (swept.hardware.device)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A row with one column per swept field (a mapping value shown as JSON)."""
    out = {k: v for k, v in row.items() if k not in ("values", "violations")}
    for path, value in row["values"]:
        nested = isinstance(value, (dict, list))
        out[f"{SWEPT}{path}"] = json.dumps(value, sort_keys=True) if nested else value
    out["violations"] = "; ".join(row["violations"] or [])
    return out


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_flat(row) for row in rows]


def _parquet_bytes(flat: list[dict[str, Any]]) -> bytes | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    columns = list(dict.fromkeys(k for row in flat for k in row))
    data = {c: [None if row.get(c) is None else str(row[c]) if isinstance(row.get(c), str)
                else row.get(c) for row in flat] for c in columns}
    try:
        table = pa.table({c: pa.array(v) for c, v in data.items()})
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column of mixed kinds: as text
        table = pa.table({c: pa.array([None if x is None else str(x) for x in v])
                          for c, v in data.items()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def write_sweep(target: Path, experiment: SweepExperiment, records: list[dict[str, Any]],
                rows: list[dict[str, Any]], summary: dict[str, Any],
                provenance: dict[str, Any], figures: bool) -> list[Path]:
    """Write the whole folder atomically; returns the final paths written."""
    flat = table_rows(rows)
    with staged_folder(target) as folder:
        write_bytes_atomic(folder / JOURNAL,
                           b"".join(record_line(r) for r in sorted(records,
                                                                   key=lambda r: r["index"])))
        write_text_atomic(folder / TABLE, csv_text(flat))
        written = [folder / JOURNAL, folder / TABLE]
        parquet = _parquet_bytes(flat)
        if parquet is not None:
            write_bytes_atomic(folder / PARQUET, parquet)
            written.append(folder / PARQUET)
        rendered: dict[str, dict[str, bytes]] = {}
        if figures and experiment.outputs.figures:
            from simulator.report.plot_sweep import render_sweep_figures, write_rendered_figures

            spec = experiment.sweep.figure
            rendered = render_sweep_figures(rows, summary, experiment.title,
                                            list(experiment.outputs.formats),
                                            spec.model_dump() if spec is not None else None)
            written += write_rendered_figures(folder, rendered)
        written += write_report(folder, experiment.title, experiment.description,
                                [{**row, "name": row["label"]} for row in rows], provenance,
                                rendered)
        document = {"title": experiment.title, "description": experiment.description,
                    "summary": summary, "points": rows, "provenance": provenance}
        written.append(write_results_json(folder, document))
    return [Path(target) / path.name for path in written]
