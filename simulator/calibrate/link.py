"""`calibrate-link`: fit a link's achievable bandwidth and latency from measured collectives.

The simulator's all-reduce over a topology is linear in the link's latency and in the
inverse of its bandwidth (alpha-beta), so the fit is two ratios: simulate the measured
collective at two sizes with the spec-sheet link, fit alpha + beta * S to the measurements
(sizes from 1 MiB up: below that the harness's own synchronisation dominates), and scale the
spec: efficiency = beta_spec / beta_measured, latency = spec latency * alpha / alpha_spec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hardware_models.catalog_io import load_link, make_device
from simulator.core.errors import UserError
from simulator.report.atomic import write_text_atomic

SCHEMA = "simulator.collectives/1"
MIN_BYTES = 1 << 20


def _simulated(size: float, hardware: str, devices: int, link: str) -> float:
    from simulator.api.cluster import predict_collective

    result, _ = predict_collective("allreduce", size, make_device(hardware), devices=devices,
                                   devices_per_node=devices, intra_link=link, inter_link=None)
    return float(result["time_s"])


def _line(sizes: list[float], times: list[float]) -> tuple[float, float]:
    beta, alpha = np.polyfit(np.array(sizes), np.array(times), 1)
    return float(alpha), float(beta)


def fit_link(records: list[dict[str, Any]], hardware: str, link: str) -> dict[str, Any]:
    big = [r for r in records if r["bytes"] >= MIN_BYTES and r["collective"] == "allreduce"]
    if len(big) < 2:
        raise UserError(f"need all-reduce records of at least {MIN_BYTES} bytes at two sizes")
    devices = int(big[0]["devices"])
    alpha, beta = _line([r["bytes"] for r in big], [r["median_s"] for r in big])
    lo, hi = min(r["bytes"] for r in big), max(r["bytes"] for r in big)
    alpha0, beta0 = _line([lo, hi], [_simulated(lo, hardware, devices, link),
                                     _simulated(hi, hardware, devices, link)])
    spec = load_link(link).spec
    return {"link": link, "efficiency": beta0 / beta,
            "latency_s": max(spec.latency_s * alpha / alpha0, 1e-9),
            "fitted_on": f"all-reduce on {devices} x {hardware}, {len(big)} sizes "
                         f"{lo:.0f}-{hi:.0f} bytes"}


def run_calibrate_link(measurements: str, hardware: str, link: str, out: str) -> None:
    path = Path(measurements)
    if not path.is_file():
        raise UserError(f"{path}: measurement file does not exist")
    data = json.loads(path.read_text())
    if data.get("schema") != SCHEMA:
        raise UserError(f"{path}: schema: expected '{SCHEMA}'")
    fitted = fit_link(data["records"], hardware, link)
    fitted["fitted_from"] = [path.name]
    write_text_atomic(Path(out), "# fitted by `python -m simulator calibrate-link`; do not "
                      "edit by hand\n" + yaml.safe_dump(fitted, sort_keys=True))
    print(f"wrote {out}: {link} efficiency {fitted['efficiency']:.3f}, "
          f"latency {fitted['latency_s'] * 1e6:.2f} us")
