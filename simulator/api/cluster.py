"""One collective alone over every device of a cluster (`predict --collective NAME --bytes S`),
with nccl-tests' algorithm and bus bandwidths. Training steps on many devices go through
the one prediction path, `simulator.api.predict`."""

from __future__ import annotations

from typing import Any

from simulator.api.build import make_topology
from simulator.core.errors import UserError
from simulator.engine.loop import simulate
from simulator.engine.trace import Trace
from simulator.parallel.collectives import collective
from simulator.parallel.comm_plan import collective_plan
from simulator.parallel.job import FULL_SIMULATION_MAX_DEVICES


def predict_collective(kind: str, size_bytes: float, device: Any, *, devices: int,
                       devices_per_node: int, intra_link: str | None, inter_link: str | None,
                       options: dict[str, Any] | None = None) -> tuple[dict[str, Any], Trace]:
    """One collective of `size_bytes` over every device; nccl-tests' bandwidths."""
    if not isinstance(size_bytes, (int, float)) or not size_bytes > 0:
        raise UserError(f"bytes must be a positive number, got {size_bytes!r}")
    options = dict(options or {})
    topo = make_topology(device, devices, devices_per_node, intra_link, inter_link,
                         options.pop("nics_per_node", 1))
    spec = collective.get(kind, field="collective")
    how = options.pop("simulate", "auto")
    symmetric = how == "symmetric" or (how == "auto" and topo.size > FULL_SIMULATION_MAX_DEVICES)
    trace = simulate(collective_plan(kind, topo, float(size_bytes), device, symmetric, **options))
    time_s = trace.end_s
    algbw = size_bytes / time_s if time_s > 0 else float("inf")
    result = {"collective": kind, "bytes": size_bytes, "devices": topo.size, "nodes": topo.nodes,
              "devices_per_node": topo.devices_per_node, "hardware": device.name,
              "intra_link": topo.intra.name if topo.intra is not None else None,
              "inter_link": topo.inter.name if topo.inter is not None else None,
              "simulated": "symmetric" if symmetric else "full", "time_s": time_s,
              "algorithm_bandwidth_bytes_per_s": algbw,
              "bus_bandwidth_bytes_per_s": algbw * spec.bus_factor(topo.size)}
    return result, trace
