"""Everything a `run` writes, in one place: results.json, results.csv, trace.json and the
figures, staged in a temporary folder and moved into place together (see output_folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.config import Outputs
from simulator.predict_api import Prediction
from simulator.report.chrome_trace import LaunchCost, trace_document, write_chrome_trace
from simulator.report.output_folder import staged_folder
from simulator.report.results_csv import write_results_csv
from simulator.report.results_json import results_document, write_results_json
from simulator.trace import Span


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
