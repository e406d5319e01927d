"""Out-of-sample checks of the workloads and devices beyond networks on GPUs: measured
task graphs (LU, tiled GEMM; `benchmarks/linalg_tasks*.py`) and the TPU model against a
published throughput. Nothing here is fitted: each measured case is predicted with the
catalog's device and the measuring library's profile, and the error is reported.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from simulator.api.predict import predict

# (measurement file, the catalog device it was measured on)
TASK_GRAPH_FILES = (("h200-linalg.json", "h200"), ("epyc-2vcpu-linalg.json", "epyc-zen4-2vcpu"),
                    ("h200-host-linalg.json", "xeon-emr-16vcpu"))
LU_BLOCK = 256  # the block the predictions use (LAPACK's dgetrf picks its own)
TPU_EXPERIMENT = "experiments/tpu_resnet50.yaml"


def task_graph_spec(record: dict[str, Any]) -> dict[str, Any]:
    """The generator arguments of a measured case."""
    if record["case"] == "blocked_lu":
        return {"kind": "blocked_lu", "n": record["n"], "block": LU_BLOCK}
    return {"kind": "tiled_gemm", "n": record["n"], "tile": record["tile"]}


def task_graph_rows(doc: dict[str, Any], hardware: str) -> list[dict[str, Any]]:
    """Every record of a measurement file beside its prediction and the error."""
    rows = []
    for rec in doc["records"]:
        spec = task_graph_spec(rec)
        result = predict(spec, hardware, framework=doc["backend"])
        rows.append({"case": spec, "measured_s": rec["median_s"],
                     "predicted_s": result["step_time_s"], "bottleneck": result["bottleneck"],
                     "error": result["step_time_s"] / rec["median_s"] - 1})
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    errors = [abs(r["error"]) for r in rows]
    return {"mape": statistics.mean(errors), "median": statistics.median(errors),
            "worst": max(errors)}


def task_graphs(measured: Path) -> list[dict[str, Any]]:
    sections = []
    for name, hardware in TASK_GRAPH_FILES:
        path = measured / name
        if path.is_file():
            doc = json.loads(path.read_text())
            sections.append({"file": name, "hardware": hardware, "doc": doc,
                             "rows": task_graph_rows(doc, hardware)})
    return sections


def tpu_published(root: Path) -> list[dict[str, Any]]:
    """The TPU scenarios of the experiment that carry a published throughput."""
    from simulator.api.predict import predict_scenario
    from simulator.config.schema import load_experiment

    rows = []
    for scenario in load_experiment(root / TPU_EXPERIMENT).scenarios:
        if not scenario.published:
            continue
        simulated = predict_scenario(scenario).result["samples_per_s"]
        published = float(scenario.published["samples_per_s"])
        rows.append({"scenario": scenario.name, "published": published,
                     "simulated": simulated, "error": simulated / published - 1,
                     "source": scenario.published.get("source", "")})
    return rows
