"""A run's output folder: what goes into it (results.json, results.csv, trace.json, the
figures) and how it appears — all at once.

Files go into a hidden temporary folder beside the target, which is renamed into place
only when every file is complete. An interrupted or failed run therefore leaves neither a
half-written results.json nor a half-filled folder (the temporary folder is removed; a
parent folder this run created is removed again if it is left empty). An existing target
is replaced only if it is a previous results folder (it holds results.json) or empty;
anything else is refused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulator.config.schema import Outputs
from simulator.core.errors import UserError
from simulator.api.predict import Prediction
from simulator.report.chrome_trace import LaunchCost, trace_document, write_chrome_trace
from simulator.report.published_table import write_published_table
from simulator.report.results_csv import write_results_csv
from simulator.report.results_json import results_document, write_results_json
from simulator.engine.trace import Span

MARKER = "results.json"


def default_folder(experiment_file: Path, root: Path = Path("results")) -> Path:
    """results/<experiment stem>-<UTC time>, with -2, -3 ... if that exists already."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = root / f"{experiment_file.stem}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def check_target(target: Path) -> None:
    """Refuse, before anything runs, a target we must not overwrite."""
    if target.exists() and not target.is_dir():
        raise UserError(f"{target}: --out must be a folder, but this is a file")
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).is_file():
        raise UserError(f"{target}: folder exists and is not a results folder (no {MARKER}); "
                        "choose another --out or remove it")


def _created_parents(folder: Path) -> list[Path]:
    missing = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        missing.append(parent)
    folder.mkdir(parents=True, exist_ok=True)
    return missing


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder to write into; on success it becomes `target`."""
    target = Path(target)
    check_target(target)
    created = _created_parents(target.parent)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        yield staging
        _replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in created:  # innermost first; only folders this run made and left empty
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        raise


def _replace(staging: Path, target: Path) -> None:
    mask = os.umask(0)  # temporary files are private; give the results the usual permissions
    os.umask(mask)
    staging.chmod(0o777 & ~mask)
    for path in staging.iterdir():
        path.chmod(0o666 & ~mask)
    if not target.exists():
        os.rename(staging, target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
    os.rename(target, old / "previous")
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def launch_cost_of(prediction: Prediction) -> LaunchCost:
    """Host time to launch a span's op, from the device model (None if it cannot say)."""
    graph, device = prediction.graph, prediction.device

    def cost(span: Span) -> float | None:
        if span.name not in graph.graph or not hasattr(device, "launch_s"):
            return None
        return float(device.launch_s(graph.op(span.name)))

    return cost


def write_run(target: Path, title: str, description: str,
              scenarios: list[tuple[dict[str, Any], Prediction]], provenance: dict[str, Any],
              outputs: Outputs, figures: bool) -> list[Path]:
    """Write the whole output folder atomically; returns the final paths written."""
    rows = [row for row, _ in scenarios]
    drawables = [(row, pred.trace, launch_cost_of(pred)) for row, pred in scenarios]
    with staged_folder(target) as folder:
        written = [write_results_csv(folder, rows)]
        table = write_published_table(folder, rows)
        written += [table] if table else []
        if outputs.trace:
            traced = [(row["name"], trace, cost) for row, trace, cost in drawables
                      if trace is not None]
            written.append(write_chrome_trace(folder, trace_document(traced, title)))
        if figures and outputs.figures:
            from simulator.report.figures import write_figures

            written += write_figures(folder, drawables, title, list(outputs.formats),
                                     outputs.timeline, outputs.top_layers)
        document = results_document(title, description, rows, provenance)
        written.append(write_results_json(folder, document))  # last: marks a complete folder
    return [target / path.name for path in written]
