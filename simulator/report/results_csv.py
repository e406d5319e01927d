"""results.csv: the rows of results.json, one line per scenario, nested fields flattened.

A nested mapping becomes dotted columns (`breakdown.compute`, `published.source`); lists
(the per-layer times) stay in results.json only. Columns appear in the order they first
occur; a mapping that is null in some rows (the breakdown of an out-of-memory scenario)
keeps its dotted columns, empty there. Numbers are written as Python's shortest round-trip
text, None as an empty cell and booleans as `true`/`false`, so every cell reads back to the
value in results.json.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from simulator.report.atomic import write_text_atomic

FILE_NAME = "results.csv"


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists are left out (they have no single cell)."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif not isinstance(value, (list, tuple)):
            flat[name] = value
    return flat


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_text(rows: list[dict[str, Any]]) -> str:
    flat = [flatten(row) for row in rows]
    columns: list[str] = []
    for row in flat:
        columns += [key for key in row if key not in columns]
    # a mapping that is None in one row (breakdown of an out-of-memory scenario) and
    # filled in another keeps only its dotted columns, left empty for that row
    columns = [c for c in columns if not any(o.startswith(f"{c}.") for o in columns)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in flat:
        writer.writerow([cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def write_results_csv(folder: Path, rows: list[dict[str, Any]]) -> Path:
    path = folder / FILE_NAME
    write_text_atomic(path, csv_text(rows))
    return path
