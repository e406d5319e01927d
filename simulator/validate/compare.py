"""`validate`: predicted against measured time for every measured kernel, with the error
overall and per op kind (MAPE, median and worst), and a log-log figure with y = x.

Convolution records time CuPy's im2col + GEMM; the simulator prices convolutions as the
implicit GEMM cuDNN runs, so their error measures that difference as well as the model's.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from hardware_models.catalog_io import make_device
from simulator.calibrate.device import HOST_LAUNCH_LABELS, usable
from simulator.calibrate.measured_ops import family, load_measurements, record_ops


def compare(records: list[dict[str, Any]], device: Any) -> list[dict[str, Any]]:
    """One row per priced record: label, op, dtype, measured_s, predicted_s, error."""
    rows = []
    for rec in usable(records, getattr(device, "spec", device)):
        if rec["op"] == "launch":
            if rec["label"] not in HOST_LAUNCH_LABELS or device.kind != "gpu":
                continue
            predicted = device.launch_s(_one_kernel())
        else:
            ops = record_ops(rec)
            if not ops:
                continue
            predicted = sum(device.op_cost(op).duration_s for op in ops)
        rows.append({"label": rec["label"], "op": rec["op"], "family": family(rec),
                     "dtype": rec["dtype"], "measured_s": rec["median_s"],
                     "predicted_s": predicted, "error": predicted / rec["median_s"] - 1})
    return rows


def _one_kernel() -> Any:
    from workloads.ops import Op

    return Op("launch", "elementwise", "fwd", "measured", 1.0, 4.0, 4.0, "fp32", 1)


def summarise(rows: list[dict[str, Any]], key: str = "op") -> dict[str, dict[str, float]]:
    """MAPE, median absolute error and worst case per group and overall."""
    groups: dict[str, list[float]] = {"all": []}
    for row in rows:
        groups.setdefault(row[key], []).append(abs(row["error"]))
        groups["all"].append(abs(row["error"]))
    return {name: {"n": len(errs), "mape": statistics.fmean(errs),
                   "median_abs_error": statistics.median(errs), "worst": max(errs)}
            for name, errs in groups.items() if errs}


def run_validate(measurements: list[str], hardware: str, out: str | None) -> None:
    from simulator.report.validation_report import table_text, write_validation

    records = load_measurements(measurements)
    backend = records[0]["backend"] or "pytorch"
    device = make_device(hardware, framework=backend)
    rows = compare(records, device)
    summary = summarise(rows)
    print(table_text(summary, device))
    if out is not None:
        write_validation(Path(out), rows, summary, device)
        print(f"wrote {out}/validation.json, validation.csv, predicted_vs_measured.png/.svg")
