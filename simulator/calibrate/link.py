"""`calibrate-link`: fit a link's achievable bandwidth from measured NCCL all-reduces.

What is fitted is the fraction of the link's line rate the library reaches on it (NCCL's
Simple protocol, which large all-reduces use): `efficiency`. The latencies are not fitted: they
are NCCL's own model (`simulator.parallel.nccl`, src/graph/tuning.cc), since a harness that
times single all-reduces between CUDA events after a barrier (benchmarks/nccl_allreduce.py)
also times its own synchronisation: the host's enqueue of the call after the start event and
the other rank's late start, 50-100 us in the small-message rows of the 2 x H200 file, where
NCCL itself takes under 20 us. So the fit uses the large messages only (`MIN_BYTES` and up) and
models each of them as the harness saw it, `harness_offset_s + predicted(S; efficiency)`, with
one harness offset for the whole file (>= 0; recorded in the profile, never used to predict):
least squares of the relative errors, the prediction being the simulator's own automatic
all-reduce on `devices` GPUs over the link at that efficiency. Efficiency is searched in
(0, 1] (golden section); the offset is the weighted mean residual at each efficiency.

Fitting again on the predictions made with the profile written (plus its harness offset, or
without it) gives the same efficiency (and the same offset, or none): the fit is idempotent.
The profile keeps the spec's latency (`latency_s`, the link's own transfers) and can be used
by path: `--intra-link FILE.yaml`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from hardware_models.catalog_io import load_link, make_device
from hardware_models.links import Link, LinkProfile
from hardware_models.spec import LinkSpec
from hardware_models.topology import build_cluster
from simulator.core.errors import UserError
from simulator.core.json_source import read_json_object, record_list
from simulator.engine.loop import simulate
from simulator.parallel.comm_plan import collective_plan
from simulator.report.atomic import write_text_atomic

SCHEMA = "simulator.collectives/1"
MIN_BYTES = 1 << 24  # 16 MiB: below it the harness's own synchronisation is most of the time
EFFICIENCY_RANGE = (0.01, 1.0)
TOLERANCE = 1e-12  # of the efficiency, relative: the golden section stops there
HEADER = ("# fitted by `python -m simulator calibrate-link`; do not edit by hand. The latencies "
          "of collectives over this link are NCCL's model (hardware_models/catalog/collectives/"
          "nccl.yaml); latency_s is the spec's.\n")


class _Model:
    """Predicted all-reduce times on `devices` GPUs of one node over `spec` at an efficiency."""

    def __init__(self, hardware: str, devices: int, spec: LinkSpec) -> None:
        self.device, self.devices, self.spec = make_device(hardware), devices, spec
        self._cache: dict[tuple[float, float], float] = {}

    def time_s(self, size: float, efficiency: float) -> float:
        if (size, efficiency) not in self._cache:
            link = Link(self.spec, efficiency)
            topo = build_cluster(1, self.devices, link, None, getattr(self.device, "host_link",
                                                                      None))
            plan = collective_plan("allreduce", topo, size, self.device, symmetric=False)
            self._cache[(size, efficiency)] = simulate(plan).end_s
        return self._cache[(size, efficiency)]


def _offset(records: list[dict[str, Any]], predicted: list[float]) -> float:
    """The harness offset of least squared relative error at these predictions (>= 0)."""
    weights = [1.0 / r["median_s"] ** 2 for r in records]
    residual = [r["median_s"] - p for r, p in zip(records, predicted, strict=True)]
    return max(0.0, sum(w * e for w, e in zip(weights, residual, strict=True)) / sum(weights))


def _cost(records: list[dict[str, Any]], model: _Model, efficiency: float) -> tuple[float, float]:
    predicted = [model.time_s(r["bytes"], efficiency) for r in records]
    offset = _offset(records, predicted)
    return sum(((offset + p) / r["median_s"] - 1) ** 2
               for r, p in zip(records, predicted, strict=True)), offset


def _golden(records: list[dict[str, Any]], model: _Model) -> float:
    """The efficiency of least cost in EFFICIENCY_RANGE, searched on its logarithm."""
    lo, hi = (math.log(e) for e in EFFICIENCY_RANGE)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _cost(records, model, math.exp(a))[0], _cost(records, model, math.exp(b))[0]
    while hi - lo > TOLERANCE:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _cost(records, model, math.exp(a))[0]
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _cost(records, model, math.exp(b))[0]
    best = math.exp((lo + hi) / 2)
    edge = EFFICIENCY_RANGE[1]  # the line rate itself, when the data want more than it
    return edge if _cost(records, model, edge)[0] <= _cost(records, model, best)[0] else best


def large_allreduces(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["collective"] == "allreduce" and r["bytes"] >= MIN_BYTES]


def fit_link(records: list[dict[str, Any]], hardware: str, link: str) -> dict[str, Any]:
    """The link profile (a LinkProfile's fields) fitted on the large all-reduces."""
    big = large_allreduces(records)
    if len({r["bytes"] for r in big}) < 2:
        raise UserError(f"need all-reduce records of at least {MIN_BYTES} bytes at two sizes")
    if len({int(r["devices"]) for r in big}) != 1:
        raise UserError("the all-reduce records must all be on the same number of devices")
    devices = int(big[0]["devices"])
    spec = load_link(link).spec
    model = _Model(hardware, devices, spec)
    efficiency = _golden(big, model)
    _, offset = _cost(big, model, efficiency)
    predicted = [model.time_s(r["bytes"], efficiency) for r in big]
    with_offset = [abs((offset + p) / r["median_s"] - 1)
                   for r, p in zip(big, predicted, strict=True)]
    alone = [abs(p / r["median_s"] - 1) for r, p in zip(big, predicted, strict=True)]
    lo, hi = min(r["bytes"] for r in big), max(r["bytes"] for r in big)
    profile = LinkProfile(
        link=link, efficiency=efficiency, latency_s=spec.latency_s, model="nccl",
        harness_offset_s=offset,
        fit_error={"mape_with_harness_offset": sum(with_offset) / len(big),
                   "max_with_harness_offset": max(with_offset),
                   "mape_without_harness_offset": sum(alone) / len(big)},
        fitted_on=f"all-reduce on {devices} x {hardware}, {len(big)} records of "
                  f"{lo:.0f}-{hi:.0f} bytes (the harness's synchronisation fitted beside, "
                  f"{offset * 1e6:.1f} us)")
    return profile.model_dump()


def run_calibrate_link(measurements: str, hardware: str, link: str, out: str) -> None:
    path = Path(measurements)
    data = read_json_object(path, "collective measurements", SCHEMA)
    fitted = fit_link(record_list(data, path), hardware, link)
    fitted["fitted_from"] = [path.name]
    write_text_atomic(Path(out), HEADER + yaml.safe_dump(fitted, sort_keys=True))
    rate = load_link(link).spec.bandwidth_bytes_per_s * fitted["efficiency"]
    print(f"wrote {out}: {link} efficiency {fitted['efficiency']:.4f} ({rate / 1e9:.1f} GB/s), "
          f"harness offset {fitted['harness_offset_s'] * 1e6:.1f} us (not used to predict); "
          f"use it with --intra-link {out}")
