"""`predict` for many devices: one step of a model on a cluster, or one collective alone.

`predict_cluster` returns the single-device result's keys plus `devices`, `cores` (total),
`communication_s` (time the busiest device's comm stream is busy), `scaling_efficiency`
(throughput / (devices x single-device throughput at the same per-model batch)) and the
strategy's own fields. `predict_collective` times a collective over every device and
reports nccl-tests' algorithm and bus bandwidths.
"""

from __future__ import annotations

from typing import Any

from hardware_models.catalog_io import link_names, load_link
from hardware_models.topology import Topology, build_cluster
from simulator.parallel.collectives import collective
from simulator.parallel.comm_plan import collective_plan
from simulator.engine.loop import simulate
from simulator.core.errors import UserError
from simulator.parallel import Job, strategy
from simulator.parallel.job import FULL_SIMULATION_MAX_DEVICES
from simulator.engine.plan import Plan, single_device_plan
from simulator.api.predict import Prediction
from simulator.results.metrics import bottleneck, breakdown, critical_device
from simulator.engine.trace import Trace
from workloads.builder import build_graph
from workloads.model_def import ModelDef

NVLINK_OF = {"h100-sxm": "nvlink4", "h200": "nvlink4", "a100-sxm4": "nvlink3"}
DEFAULT_INTER = "ib-ndr"
TOPOLOGY_OPTIONS = ("nics_per_node",)


def default_intra_link(device: Any) -> str | None:
    """NVLink through an NVSwitch on SXM boards, else the device's own host link (PCIe)."""
    if device.name in NVLINK_OF:
        return NVLINK_OF[device.name]
    host = getattr(device, "host_link", None)
    return host.name if host is not None else None


def make_topology(device: Any, devices: int, devices_per_node: int, intra_link: str | None,
                  inter_link: str | None, nics_per_node: int = 1) -> Topology:
    for name, value in (("devices", devices), ("devices_per_node", devices_per_node)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")
    if devices % devices_per_node:
        raise UserError(f"devices ({devices}) must be a multiple of devices_per_node "
                        f"({devices_per_node})")
    intra = intra_link if intra_link is not None else default_intra_link(device)
    inter = inter_link if inter_link is not None else DEFAULT_INTER
    host = getattr(device, "host_link", None)
    return build_cluster(devices // devices_per_node, devices_per_node,
                         _link(intra, "intra_link") if intra else None, _link(inter, "inter_link"),
                         host, nics_per_node)


def _link(name: str, field: str) -> Any:
    if name not in link_names():
        raise UserError(f"{field}: unknown link '{name}'; valid link names: {', '.join(link_names())}")
    return load_link(name)


def communication_s(trace: Trace, plan: Plan, device: int, symmetric: bool) -> float:
    """Time during which a transfer to or from `device` is in flight (union of spans). In a
    symmetric plan the representative's comm tasks stand for all of its transfers."""
    touching = set()
    for task in plan.tasks:
        if task.transfer is None:
            continue
        ends = {e for f in task.transfer.flows for e in (f.src, f.dst)}
        if task.device == device or (not symmetric and device in ends):
            touching.add(task.name)
    busy, cursor = 0.0, 0.0
    for span in sorted((s for s in trace.spans if s.name in touching), key=lambda s: s.start_s):
        start = max(span.start_s, cursor)
        if span.end_s > start:
            busy += span.end_s - start
        cursor = max(cursor, span.end_s)
    return busy


def _single_step_s(model: ModelDef, device: Any, batch: int, precision: str, mode: str,
                   optimizer: str) -> float:
    graph = build_graph(model, batch, mode, precision, optimizer)
    return simulate(single_device_plan(graph, device)).end_s


def predict_cluster(model: ModelDef, device: Any, *, devices: int, devices_per_node: int,
                    intra_link: str | None, inter_link: str | None, parallel: str, batch: int,
                    precision: str, mode: str, optimizer: str = "sgd",
                    options: dict[str, Any] | None = None) -> Prediction:
    """One step on `devices` devices; `batch` is per device for `data`, per model replica
    otherwise. `options` carries strategy knobs (micro_batches, partitions, ps_shards,
    bucket_bytes, split, simulate) plus `collective` (data parallel's all-reduce) and
    `nics_per_node`."""
    options = dict(options or {})
    nics = options.pop("nics_per_node", 1)
    topo = make_topology(device, devices, devices_per_node, intra_link, inter_link, nics)
    return predict_on_topology(model, device, topo, parallel, batch, precision, mode, optimizer,
                               options)


def predict_on_topology(model: ModelDef, device: Any, topo: Topology, parallel: str, batch: int,
                        precision: str, mode: str, optimizer: str = "sgd",
                        options: dict[str, Any] | None = None) -> Prediction:
    """As `predict_cluster`, on a topology given as such (any links, any graph)."""
    options = dict(options or {})
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise UserError(f"batch must be a positive integer, got {batch}")
    plan_fn = _named(strategy, parallel, "parallel")
    job = Job(model, device, topo, batch, precision, mode, optimizer,
              options.pop("collective", "allreduce"), options)
    _named(collective, job.collective, "options.collective")
    cplan = plan_fn(job)
    result = _header(model, device, job, parallel, cplan)
    if not result["fits"]:
        result.update(status="out_of_memory", step_time_s=None, samples_per_s=None,
                      error=(f"out of memory: needs {cplan.memory['peak_bytes'] / 1e9:.2f} GB per "
                             f"device, {device.name} has {device.memory_bytes / 1e9:.2f} GB"))
        return Prediction(result, cplan.graph, None, device)
    trace = simulate(cplan.plan)
    result.update(_timing(trace, job, cplan))
    single_s = _single_step_s(model, device, batch, precision, mode, optimizer)
    result["single_device_step_time_s"] = single_s
    result["scaling_efficiency"] = result["samples_per_s"] / (topo.size * batch / single_s)
    return Prediction(result, cplan.graph, trace, device)


def _named(registry: Any, name: str, field: str) -> Any:
    try:
        return registry.get(name)
    except UserError as err:
        raise UserError(f"{field}: {err}") from None


def _header(model: ModelDef, device: Any, job: Job, parallel: str, cplan: Any) -> dict[str, Any]:
    topo = job.topo
    peak = cplan.memory["peak_bytes"]
    return {
        "model": model.name, "hardware": device.name, "batch": job.batch,
        "precision": job.precision, "mode": job.mode, "devices": topo.size,
        "cores": topo.size * device.cores, "nodes": topo.nodes,
        "devices_per_node": topo.devices_per_node, "parallel": parallel,
        "collective": job.collective, "simulated": "symmetric" if cplan.plan.replicas > 1 else "full",
        **_link_names(topo), "calibration": getattr(getattr(device, "profile", None), "origin", "ideal"),
        "flops": cplan.flops_per_step, "bytes": cplan.graph.bytes * cplan.samples_per_step
        / cplan.graph.batch, "params": cplan.graph.params,
        "samples_per_step": cplan.samples_per_step,
        "memory_peak_bytes": peak, "memory_capacity_bytes": device.memory_bytes,
        "memory": dict(cplan.memory), "fits": peak <= device.memory_bytes, **cplan.extra,
    }


def _link_names(topo: Topology) -> dict[str, str | None]:
    return {"intra_link": topo.intra.name if topo.intra is not None else None,
            "inter_link": topo.inter.name if topo.inter is not None else None}


def _timing(trace: Trace, job: Job, cplan: Any) -> dict[str, Any]:
    device = critical_device(trace)
    parts = breakdown(trace, device)
    step = trace.end_s
    if cplan.wait_floor_s > step:  # waiting for the parameter servers to apply updates
        parts["communication"] += cplan.wait_floor_s - step
        step = cplan.wait_floor_s
    gemm_dtype = next((op.dtype for op in cplan.graph.ops() if op.kind == "gemm"), "fp32")
    peak = job.device.peak_flops(gemm_dtype) * job.topo.size
    return {
        "status": "ok", "step_time_s": step, "samples_per_s": cplan.samples_per_step / step,
        "breakdown": parts, "bottleneck": bottleneck(parts),
        "utilisation": cplan.flops_per_step / (step * peak),
        "achieved_flops_per_s": cplan.flops_per_step / step,
        "communication_s": communication_s(trace, cplan.plan, device, cplan.plan.replicas > 1),
    }


def predict_collective(kind: str, size_bytes: float, device: Any, *, devices: int,
                       devices_per_node: int, intra_link: str | None, inter_link: str | None,
                       options: dict[str, Any] | None = None) -> tuple[dict[str, Any], Trace]:
    """One collective of `size_bytes` over every device; nccl-tests' bandwidths."""
    if not isinstance(size_bytes, (int, float)) or not size_bytes > 0:
        raise UserError(f"bytes must be a positive number, got {size_bytes!r}")
    options = dict(options or {})
    topo = make_topology(device, devices, devices_per_node, intra_link, inter_link,
                         options.pop("nics_per_node", 1))
    spec = _named(collective, kind, "collective")
    how = options.pop("simulate", "auto")
    symmetric = how == "symmetric" or (how == "auto" and topo.size > FULL_SIMULATION_MAX_DEVICES)
    trace = simulate(collective_plan(kind, topo, float(size_bytes), device, symmetric, **options))
    time_s = trace.end_s
    algbw = size_bytes / time_s if time_s > 0 else float("inf")
    result = {"collective": kind, "bytes": size_bytes, "devices": topo.size, "nodes": topo.nodes,
              "devices_per_node": topo.devices_per_node, "hardware": device.name,
              **_link_names(topo), "simulated": "symmetric" if symmetric else "full", "time_s": time_s,
              "algorithm_bandwidth_bytes_per_s": algbw,
              "bus_bandwidth_bytes_per_s": algbw * spec.bus_factor(topo.size)}
    return result, trace
