"""The measurement record: one timed kernel configuration, as stored in the JSON file.

File schema "simulator.measurements/1":
  {"schema", "backend", "date", "command", "device": {...}, "software": {...}, "records": [...]}
Each record has "op", "dtype", "threads", "label", its shape fields (see SHAPE_FIELDS),
"flops", "bytes" (minimal DRAM traffic: each operand read once, each result written once),
"median_s", "min_s", "reps" and "times_s"; conv records may add "parts_s" (median seconds of
each stage: layout changes, im2col, GEMM).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

SCHEMA = "simulator.measurements/1"
ITEMSIZE = {"fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2}
DTYPES = tuple(ITEMSIZE)
_CONV = ("batch", "in_channels", "out_channels", "height", "width", "kernel", "stride", "padding")
SHAPE_FIELDS: dict[str, tuple[str, ...]] = {
    "gemm": ("m", "n", "k"),
    "conv2d_fwd": _CONV,
    "conv2d_bwd_data": _CONV,
    "conv2d_bwd_weight": _CONV,
    "relu": ("elements",),
    "add": ("elements",),
    "sum": ("elements",),
    "maxpool2d": ("batch", "channels", "height", "width", "kernel", "stride"),
    "maxpool2d_bwd": ("batch", "channels", "height", "width", "kernel", "stride"),
    "bias_add": ("elements", "channels"),
    "bias_grad": ("elements", "channels"),
    "im2col": ("elements",),
    "col2im": ("elements",),
    "copy_h2d": ("bytes_moved", "pinned"),
    "copy_d2h": ("bytes_moved", "pinned"),
    "launch": (),
}
COMMON_FIELDS = (
    "op",
    "dtype",
    "threads",
    "label",
    "flops",
    "bytes",
    "median_s",
    "min_s",
    "reps",
    "times_s",
)


def _round(t: float) -> float:
    """Seconds to 5 significant digits: timer noise is far above that, and the file stays small."""
    return float(f"{t:.5g}")


def make_record(
    op: str,
    dtype: str,
    threads: int | None,
    label: str,
    shape: dict[str, Any],
    flops: float,
    bytes_: float,
    times_s: list[float],
) -> dict[str, Any]:
    """One record; `times_s` are the per-repetition times (warm-up excluded)."""
    missing = set(SHAPE_FIELDS[op]) - set(shape)
    if missing or dtype not in DTYPES:
        raise ValueError(f"bad record {op} {dtype}: missing shape fields {sorted(missing)}"
                         if missing else f"bad record {op}: dtype {dtype} not one of {DTYPES}")
    times = [float(t) for t in times_s]
    if not times or not all(math.isfinite(t) and t > 0 for t in times):
        raise ValueError(f"{op} {label}: times must be positive and finite, got {times[:4]}")
    record: dict[str, Any] = {"op": op, "dtype": dtype, "threads": threads, "label": label}
    record.update(shape)
    record.update(
        flops=float(flops),
        bytes=float(bytes_),
        reps=len(times),
        median_s=_round(statistics.median(times)),
        min_s=_round(min(times)),
        times_s=[_round(t) for t in times],
    )
    return record


def median_parts(parts: list[dict[str, float]]) -> dict[str, float]:
    """Median of each named stage over repetitions."""
    return {name: _round(statistics.median(p[name] for p in parts)) for name in parts[0]}


def check_record(record: dict[str, Any]) -> None:
    """Raise ValueError unless `record` has the common and shape fields of its op."""
    op = record.get("op")
    if op not in SHAPE_FIELDS:
        raise ValueError(f"unknown op {op!r}")
    missing = (set(COMMON_FIELDS) | set(SHAPE_FIELDS[op])) - set(record)
    if missing:
        raise ValueError(f"{op} record {record.get('label')!r} lacks {sorted(missing)}")
