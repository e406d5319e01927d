"""Fitting a GPU's GEMM alignment factors (`Profile.gemm_alignment_efficiency`) from matrix
products timed alone with and without 16-byte-aligned strides
(`benchmarks/torch_gemm_alignment.py`, schema simulator.gemm-alignment/1).

Each product whose feature sizes (n, k) are not both multiples of 16 bytes is paired with the
aligned product of the same rows, layout and dtype whose sizes are nearest (50,257 with
50,304; 2,303 with 2,304); its factor is its rate over the twin's. The factor of an alignment
(in bytes: the largest power of two dividing n and k, times the element size) is the median
over its pairs. Only tensor-core dtypes (the FP32 units' kernels do not depend on it), and
only the products laid out as nn.Linear runs them (F.linear, y = x w^T: the `linear` layer
kind; x @ w, measured too, ran 1.3x faster misaligned on the H200).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from simulator.core.json_source import read_json_object, record_list
from simulator.report.atomic import write_text_atomic
from workloads.layers import alignment
from workloads.ops import DTYPE_BYTES

SCHEMA = "simulator.gemm-alignment/1"
TENSOR_DTYPES = ("bf16", "fp16", "tf32")
LAYOUT = "linear"  # F.linear, as the linear layer kind (nn.Linear) runs its products


def alignment_bytes(rec: dict[str, Any]) -> int:
    return alignment(int(rec["n"]), int(rec["k"])) * DTYPE_BYTES.get(str(rec["dtype"]), 4)


def _check(rec: dict[str, Any], where: str) -> None:
    """A timed product: whole positive sizes and a positive, finite time."""
    for field in ("m", "n", "k"):
        value = rec.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**40:
            raise UserError(f"{where}.{field}: must be a whole number from 1 to 2^40, "
                            f"got {value!r}")
    seconds = rec.get("median_s")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
            or not 0 < seconds < float("inf"):
        raise UserError(f"{where}.median_s: must be a positive number of seconds, "
                        f"got {seconds!r}")


def alignment_pairs(data: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """Each misaligned tensor-core product with its aligned twin and the ratio of rates."""
    records = record_list(data, path)
    for i, rec in enumerate(records):
        if rec.get("status") == "ok":
            _check(rec, f"{path}: records[{i}]")
    rows = [r for r in records if r.get("status") == "ok"
            and r.get("dtype") in TENSOR_DTYPES and r.get("layout", LAYOUT) == LAYOUT]
    aligned = [r for r in rows if alignment_bytes(r) >= 16]
    pairs = []
    for rec in (r for r in rows if alignment_bytes(r) < 16):
        twins = [a for a in aligned if (a["m"], a["layout"], a["dtype"])
                 == (rec["m"], rec["layout"], rec["dtype"])]
        if not twins:
            continue
        twin = min(twins, key=lambda a: abs(a["n"] - rec["n"]) + abs(a["k"] - rec["k"]))

        def rate(r: dict[str, Any]) -> float:
            return 2.0 * r["m"] * r["n"] * r["k"] / r["median_s"]

        pairs.append({"record": rec, "twin": twin, "bytes": alignment_bytes(rec),
                      "factor": rate(rec) / rate(twin)})
    return pairs


def fit_alignment(data: dict[str, Any], path: Path) -> dict[str, float]:
    """The median rate factor per alignment in bytes ('2', '4', '8')."""
    by_bytes: dict[int, list[float]] = {}
    for pair in alignment_pairs(data, path):
        by_bytes.setdefault(pair["bytes"], []).append(pair["factor"])
    if not by_bytes:
        raise UserError(f"{path}: no misaligned tensor-core product with an aligned twin")
    return {str(b): min(1.0, statistics.median(v)) for b, v in sorted(by_bytes.items())}


def run_calibrate_alignment(measurements: str, base: str, out: str) -> None:
    """`calibrate-alignment`: the profile `base` (a catalog profile name or a profile YAML)
    with its GEMM alignment factors fitted to a gemm-alignment file, written to `out`."""
    from simulator.calibrate.device import base_profile, profile_yaml

    path = Path(measurements)
    data = read_json_object(path, "GEMM measurements", SCHEMA)
    start = base_profile(base)
    factors = fit_alignment(data, path)
    profile = start.model_copy(update={
        "gemm_alignment_efficiency": factors,
        "fitted_from": sorted({*start.fitted_from, path.name})})
    write_text_atomic(Path(out), profile_yaml(profile))
    print(f"wrote {out}: GEMM rate at " + ", ".join(
        f"{b}-byte strides {f:.2f}x" for b, f in factors.items()) + " of aligned")
