"""A finished sweep in numbers: the table of its points, Pareto fronts, the best point per
objective under the constraints, and scaling curves.

`point_rows(records, constraints)` flattens the journal's records (in point order) into one
row per point: its index, label and swept values, status and error, whether it meets the
constraints (and which it breaks), and the headline numbers of its results row (`COLUMNS`).
`sweep_summary(rows, sweep)` computes from those rows: `pareto` (time vs hardware cost,
cloud cost and energy; the time is `time_to_train_s` where the points have a dataset, else
`step_time_s`), `best` (per objective, under the constraints) and `scaling` (throughput and
scaling efficiency against the device count, one curve per setting of the other swept
fields, where `hardware.count` is swept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulator.config.sweep import Sweep, label_of
from simulator.results.pareto import best, pareto_front, violations

COLUMNS = ("model", "hardware", "devices", "nodes", "strategy", "batch", "global_batch",
           "precision", "step_time_s", "samples_per_s", "scaling_efficiency", "bottleneck",
           "memory_peak_bytes", "time_to_train_s", "hardware_cost_usd", "hardware_cost_basis",
           "cloud_cost_usd", "cloud_offer", "power_w", "power_peak_w", "energy_j",
           "samples_per_s_per_usd")
COST_AXES = ("hardware_cost_usd", "cloud_cost_usd", "energy_j")
COUNT = "hardware.count"
WHY_UNKNOWN = {"cloud_cost_usd": "no public on-demand offer for the device in "
                                 "hardware_models/catalog/costs.yaml",
               "energy_j": "no TDP for the device", "power_w": "no TDP for the device"}


def point_rows(records: Sequence[dict[str, Any]], sweep: Sweep) -> list[dict[str, Any]]:
    """One flat row per record, in point order."""
    rows = []
    for record in sorted(records, key=lambda r: r["index"]):
        result = record.get("row") or {}
        row: dict[str, Any] = {"index": record["index"], "label": record["label"],
                               "values": record["values"], "status": record["status"],
                               "error": record["error"]}
        row.update({key: result.get(key) for key in COLUMNS})
        broken = violations(row, sweep.constraints)
        row.update(feasible=not broken, violations=broken or None)
        rows.append(row)
    return rows


def time_axis(rows: Sequence[dict[str, Any]]) -> str:
    return "time_to_train_s" if any(r.get("time_to_train_s") for r in rows) else "step_time_s"


def _point(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {"index": row["index"], "label": row["label"], **{k: row.get(k) for k in keys}}


def fronts(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Pareto fronts of the time against each cost that some point has."""
    ran = [r for r in rows if r["status"] == "ok"]
    x = time_axis(ran)
    out = {}
    for y in COST_AXES:
        front = pareto_front(ran, x, y)
        if front:
            out[f"{x}_vs_{y}"] = {"x": x, "y": y, "points": [_point(r, x, y) for r in front]}
    return out


def scaling(rows: Sequence[dict[str, Any]], sweep: Sweep) -> list[dict[str, Any]]:
    """Throughput and efficiency against devices, one curve per setting of the other axes."""
    if COUNT not in sweep.grid:
        return []
    curves: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] != "ok":
            continue
        others = tuple((p, v) for p, v in row["values"] if p != COUNT)
        curves.setdefault(label_of(others) or "all", []).append(
            _point(row, "devices", "samples_per_s", "scaling_efficiency"))
    return [{"series": name, "points": sorted(points, key=lambda p: (p["devices"], p["index"]))}
            for name, points in curves.items()]


def unknown(rows: Sequence[dict[str, Any]], objective: str) -> dict[str, Any] | None:
    """The points that ran but have no value of `objective` (a device without a published
    price has no hardware cost, one without a public cloud offer no cloud cost): `best` and
    the fronts leave them out, and the summary says so rather than treating them as free.
    None when every point that ran has a value."""
    missing = [r for r in rows if r["status"] == "ok" and r.get(objective) is None]
    if not missing:
        return None
    if objective in ("hardware_cost_usd", "samples_per_s_per_usd"):
        why = sorted({str(r["hardware_cost_basis"]) for r in missing
                      if r.get("hardware_cost_basis")})
    else:
        why = [WHY_UNKNOWN[objective]] if objective in WHY_UNKNOWN else []
    return {"points": len(missing), "hardware": sorted({str(r["hardware"]) for r in missing}),
            **({"why": why} if why else {})}


def sweep_summary(rows: Sequence[dict[str, Any]], sweep: Sweep) -> dict[str, Any]:
    """Counts, fronts, the best point per objective (and the points each leaves out for want
    of a value) and the scaling curves."""
    winners, left_out = {}, {}
    for objective in sweep.objectives:
        row = best(rows, objective, sweep.constraints)
        winners[objective] = None if row is None else _point(row, objective, *COLUMNS[:3])
        if (missing := unknown(rows, objective)) is not None:
            left_out[objective] = missing
    statuses = [r["status"] for r in rows]
    return {"points": len(rows), "ok": statuses.count("ok"),
            "out_of_memory": statuses.count("out_of_memory"), "failed": statuses.count("error"),
            "feasible": sum(1 for r in rows if r["feasible"]),
            "objectives": list(sweep.objectives),
            "constraints": sweep.constraints.model_dump(exclude_none=True),
            "best": winners, "unknown": left_out, "pareto": fronts(rows),
            "scaling": scaling(rows, sweep)}
