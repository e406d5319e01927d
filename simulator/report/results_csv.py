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
    """Nested mappings to dotted keys (lists are kept as they are; csv_text leaves them out)."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def columns_of(flat_rows: list[dict[str, Any]]) -> list[str]:
    """Columns in first-seen order, without lists (no single cell holds them) and without a
    mapping's own name where other rows have its dotted columns."""
    columns: list[str] = []
    for row in flat_rows:
        columns += [key for key in row if key not in columns]
    lists = {key for row in flat_rows for key, value in row.items()
             if isinstance(value, (list, tuple))}
    return [c for c in columns
            if c not in lists and not any(o.startswith(f"{c}.") for o in columns)]


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
    columns = columns_of(flat)
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
