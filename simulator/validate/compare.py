"""`validate`: predicted against measured time for every measured kernel, or every measured
training and inference step (zoo files of `benchmarks/torch_zoo.py`, grouped by network and
regime), with the error overall and per group (MAPE, median and worst), and a log-log figure
with y = x.

Convolution records time CuPy's im2col + GEMM; the simulator prices convolutions as the
implicit GEMM cuDNN runs, so their error measures that difference as well as the model's.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hardware_models.catalog_io import make_device
from simulator.calibrate.device import HOST_LAUNCH_LABELS, usable
from simulator.calibrate.measured_ops import family, load_measurements, record_ops
from simulator.core.errors import UserError
from simulator.core.json_source import read_json_object


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


def grouped_errors(rows: list[dict[str, Any]], keys: Callable[[dict[str, Any]], Iterable[str]]
                   ) -> dict[str, dict[str, float]]:
    """MAPE, median and worst absolute error (and rows) of each group that `keys` puts a row
    in, in the order of the group names."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        for key in keys(r):
            groups.setdefault(key, []).append(abs(r["error"]))
    return {k: {"mape": statistics.mean(v), "median": statistics.median(v), "worst": max(v),
                "rows": len(v)} for k, v in sorted(groups.items())}


STEP_SCHEMA = "simulator.torch-zoo/1"  # step times (benchmarks/torch_zoo.py)


def is_step_file(path: str) -> bool:
    try:
        return read_json_object(path).get("schema") == STEP_SCHEMA
    except UserError:
        return False  # load_measurements reports what is wrong with it


def compare_steps(paths: list[str], hardware: str) -> list[dict[str, Any]]:
    """One row per measured step (GPU steps of catalog models), predicted on `hardware`."""
    from simulator.api.predict import predict
    from simulator.calibrate.host import is_host_bound, step_records

    rows = []
    for rec in (r for path in paths for r in step_records(Path(path))):
        result = predict(rec["model"], hardware, batch=rec["batch"], mode=rec["mode"],
                         precision=rec["precision"], input=rec.get("input", "device"))
        if result["step_time_s"] is None:
            continue
        regime = "host-bound" if is_host_bound(rec) else "device"
        rows.append({"label": f"{rec['model']} {rec['mode']} b{rec['batch']} {rec['precision']}",
                     "op": f"{rec['model']} {regime}", "family": "step",
                     "dtype": rec["precision"], "measured_s": rec["median_s"],
                     "predicted_s": result["step_time_s"],
                     "error": result["step_time_s"] / rec["median_s"] - 1})
    return rows


def run_validate(measurements: list[str], hardware: str, out: str | None) -> None:
    from simulator.report.validation_report import table_text, write_validation

    steps = [m for m in measurements if is_step_file(m)]
    if steps:
        rows = compare_steps(steps, hardware)
        print(table_text(summarise(rows), make_device(hardware)))
        measurements = [m for m in measurements if m not in steps]
        if not measurements:
            if out is not None:
                write_validation(Path(out), rows, summarise(rows), make_device(hardware))
            return
    records = load_measurements(measurements)
    backend = records[0]["backend"] or "pytorch"
    device = make_device(hardware, framework=backend)
    rows = compare(records, device)
    summary = summarise(rows)
    print(table_text(summary, device))
    if out is not None:
        write_validation(Path(out), rows, summary, device)
        print(f"wrote {out}/validation.json, validation.csv, predicted_vs_measured.png/.svg")
