"""Held-out validation: calibrate on one half of the measurements, check the other half.

The split is by a hash of each record's identity (op, dtype, shape, label), so it is the
same on every machine and does not depend on the order of the file.
"""

from __future__ import annotations

import hashlib
import statistics
from typing import Any

from hardware_models.catalog_io import build_device, load_spec
from simulator.calibrate.device import calibrate_profile
from simulator.validate.compare import compare

IDENTITY = ("op", "dtype", "label", "m", "n", "k", "elements", "bytes_moved", "pinned", "batch",
            "in_channels", "out_channels", "height", "width", "threads", "file")


def half(record: dict[str, Any]) -> int:
    key = "|".join(f"{k}={record.get(k)}" for k in IDENTITY)
    return hashlib.sha256(key.encode()).digest()[0] % 2


def split(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    train = [r for r in records if half(r) == 0 or r["op"] == "launch"]
    test = [r for r in records if half(r) == 1 and r["op"] != "launch"]
    return train, test


def held_out_errors(records: list[dict[str, Any]], hardware: str) -> dict[str, dict[str, float]]:
    """Per family (gemm, elementwise, copy, ...): n, MAPE, median and worst absolute error of
    predictions from a profile fitted on the other half."""
    train, test = split(records)
    profile = calibrate_profile(train, hardware)
    rows = compare(test, build_device(load_spec(hardware), profile))
    out: dict[str, dict[str, float]] = {}
    for fam in sorted({r["family"] for r in rows}):
        errs = [abs(r["error"]) for r in rows if r["family"] == fam]
        out[fam] = {"n": len(errs), "mape": statistics.fmean(errs),
                    "median_abs_error": statistics.median(errs), "worst": max(errs)}
    return out
