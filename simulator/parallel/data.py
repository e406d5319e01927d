"""Strategy `data`: synchronous data parallelism as PyTorch DDP runs it.

Every device runs the whole model on its own batch (`batch` is per device). Gradients are
grouped into buckets of `bucket_bytes` (DDP's bucket_cap_mb = 25, i.e. 25 MiB), filled
layer by layer in the order backward produces them; a bucket starts its all-reduce on the
comm stream as soon as the last of its layers' weight gradients is written, overlapping the
rest of the backward pass. The optimizer step waits for every bucket. (DDP's smaller first
bucket and its splitting by parameter tensor rather than by layer are not modelled.)
"""

from __future__ import annotations

from simulator.parallel.job import (
    ClusterPlan,
    Job,
    check_options,
    new_plan,
    prefixed,
    simulated_devices,
    strategy,
)
from workloads.ops import OpGraph

DDP_BUCKET_BYTES = 25 * 2**20
GRAD_BYTES_PER_PARAM = 4  # fp32 gradients (master weights stay fp32 under autocast)


def gradient_buckets(job: Job, graph: OpGraph, bucket_bytes: float) -> list[tuple[str, float]]:
    """(op after which the bucket is complete, gradient bytes), in backward order."""
    params = {layer.name: layer.cost.params for layer in job.layers_for(graph.batch)}
    last_grad_op: dict[str, str] = {}
    for op in graph.ops():
        if op.phase == "bwd_weight":
            last_grad_op[op.layer] = op.name
    buckets, filled, last = [], 0.0, ""
    for layer, op_name in sorted(last_grad_op.items(), key=lambda kv: graph.order.index(kv[1])):
        filled += params[layer] * GRAD_BYTES_PER_PARAM
        last = op_name
        if filled >= bucket_bytes:
            buckets.append((last, filled))
            filled = 0.0
    if filled > 0:
        buckets.append((last, filled))
    return buckets


@strategy.register("data")
def data_parallel(job: Job) -> ClusterPlan:
    check_options(job, "data", ("bucket_bytes",))
    bucket_bytes = job.options.get("bucket_bytes", DDP_BUCKET_BYTES)
    graph = job.graph(job.replica_batch(1, job.topo.size))
    group = list(range(job.topo.size))
    simulated = simulated_devices(job, group, 0)
    plan, comm = new_plan(job, simulated)
    buckets = dict(gradient_buckets(job, graph, bucket_bytes)) if job.mode == "train" else {}
    synced: dict[int, tuple[str, ...]] = {d: () for d in simulated}
    prefixes = [f"d{d}." for d in simulated]
    for op in graph.ops():
        inputs = graph.predecessors(op.name)
        for i, d in enumerate(simulated):
            prefix = prefixes[i]
            preds = prefixed(prefix, inputs)
            if op.phase == "update":
                preds += synced[d]
            plan.add(job.task(op, i, d, preds, prefix))
        if op.name in buckets:
            name = f"allreduce.{op.layer}"
            after: dict[int, tuple[str, ...]] = {d: (f"d{d}.{op.name}",) for d in simulated}
            done = comm.add(name, job.collective, group, buckets[op.name], after, layer=name)
            for d in simulated:
                synced[d] += done.get(d, ())
    extra = {"buckets": len(buckets), "gradient_bytes": sum(buckets.values())}
    return ClusterPlan(plan, graph, graph.batch * job.topo.size, graph.flops * job.topo.size,
                       dict(graph.memory), extra)


data_parallel.mixes_devices = True  # type: ignore[attr-defined]  # each device its own model
