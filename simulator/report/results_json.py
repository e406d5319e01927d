"""results.json: one object per scenario plus the provenance of the run.

Layout: `{"title", "description", "scenarios": [row, ...], "provenance": {...}}`, keys
sorted, floats as Python writes them (shortest round-trip form). Everything but
`provenance.date` is determined by the experiment file and the code, so re-running an
experiment reproduces the file byte for byte apart from that one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.report.atomic import write_json_atomic

FILE_NAME = "results.json"


def results_document(title: str, description: str, rows: list[dict[str, Any]],
                     provenance: dict[str, Any]) -> dict[str, Any]:
    return {"title": title, "description": description, "scenarios": rows,
            "provenance": provenance}


def write_results_json(folder: Path, document: dict[str, Any]) -> Path:
    path = folder / FILE_NAME
    write_json_atomic(path, document)
    return path
