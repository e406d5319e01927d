"""Strategy `data`: synchronous data parallelism as PyTorch DDP runs it.

Every device runs the whole model on its own batch (`batch` is per device). Gradients are
grouped into buckets of `bucket_bytes` (DDP's bucket_cap_mb = 25, i.e. 25 MiB), filled
layer by layer in the order backward produces them; a bucket starts its all-reduce on the
comm stream as soon as the last of its layers' weight gradients is written, overlapping the
rest of the backward pass. The optimizer step waits for every bucket. (DDP's smaller first
bucket and its splitting by parameter tensor rather than by layer are not modelled.)

The reducer's own kernels run on the compute stream, as torch/csrc/distributed/c10d/
reducer.cpp issues them: when a parameter's gradient is ready its autograd hook writes it,
divided by the world size, into its bucket (`at::mul_out(bucket_view, grad, 1/world)`, a
kernel per parameter tensor: the bucket's all-reduce waits for them); once backward is over,
`finalize_bucket_dense` copies each all-reduced bucket back into the parameters' `.grad`
(`grad.copy_(bucket_view)`, a kernel per tensor, after its bucket's all-reduce), and the
optimizer step waits for those copies. The buckets are a second copy of the fp32 gradients,
allocated with DDP and held throughout (`ddp_buckets_bytes`, in the peak). With
`gradient_as_bucket_view: true` (DDP's option; its documentation: "the saved memory size will
be equal to the total gradients size") the gradients are views of the buckets: one in-place
division per tensor, no copies, no second copy held.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.core.errors import UserError
from simulator.parallel.comm_plan import Done
from simulator.parallel.job import (
    ClusterPlan,
    Job,
    check_options,
    new_plan,
    prefixed,
    simulated_devices,
    strategy,
)
from workloads.builder import layer_parameter_tensors
from workloads.ops import Op, OpGraph

DDP_BUCKET_BYTES = 25 * 2**20
# PyTorch DDP's devices; an XLA device (tpu) all-reduces its gradients inside the compiled
# step, without a reducer, and the ideal device has no kernels to copy with
DDP_DEVICE_KINDS = ("gpu", "cpu")
GRAD_BYTES_PER_PARAM = 4  # fp32 gradients (master weights stay fp32 under autocast)


def last_gradient_ops(graph: OpGraph) -> dict[str, str]:
    """Layer -> its last weight-gradient op (the gradient is ready when it ends), in
    backward order."""
    last: dict[str, str] = {}
    for op in graph.ops():
        if op.phase == "bwd_weight":
            last[op.layer] = op.name
    return dict(sorted(last.items(), key=lambda kv: graph.order.index(kv[1])))


def gradient_buckets(job: Job, graph: OpGraph, bucket_bytes: float) -> list[tuple[str, float]]:
    """(op after which the bucket is complete, gradient bytes), in backward order."""
    params = {layer.name: layer.cost.params for layer in job.layers_for(graph.batch)}
    buckets, filled, last = [], 0.0, ""
    for layer, op_name in last_gradient_ops(graph).items():
        filled += params[layer] * GRAD_BYTES_PER_PARAM
        last = op_name
        if filled >= bucket_bytes:
            buckets.append((last, filled))
            filled = 0.0
    if filled > 0:
        buckets.append((last, filled))
    return buckets


@dataclass(frozen=True)
class Reducer:
    """DDP's reducer kernels of one layer's fp32 gradients (see the module docstring)."""

    params: float
    tensors: int
    as_view: bool

    def into_bucket(self, layer: str) -> Op:
        """`mul_out(bucket_view, grad, 1/world)`, or a bucket view's in-place `div_`."""
        kernel, what = ("div", "scale_bucket") if self.as_view else ("mul", "to_bucket")
        return self._op(f"ddp.{layer}.{what}", layer, "bwd_weight", kernel, self.params)

    def out_of_bucket(self, layer: str) -> Op:
        """`grad.copy_(bucket_view)` once the bucket is all-reduced."""
        return self._op(f"ddp.{layer}.from_bucket", layer, "update", "copy", 0.0)

    def _op(self, name: str, layer: str, phase: str, kernel: str, flops: float) -> Op:
        size = self.params * GRAD_BYTES_PER_PARAM
        return Op(name, "elementwise", phase, layer, flops, size, size,  # type: ignore[arg-type]
                  "fp32", max(1, int(self.params)), kernels=self.tensors,
                  attrs=(("kernel", kernel),))


def reducers(job: Job, graph: OpGraph, as_view: bool) -> dict[str, Reducer]:
    """The reducer of each layer with parameters."""
    layers = job.layers_for(graph.batch)
    tensors = layer_parameter_tensors(job.network(), layers)
    return {layer.name: Reducer(float(layer.cost.params), tensors[layer.name], as_view)
            for layer in layers if layer.name in tensors}


@strategy.register("data")
def data_parallel(job: Job) -> ClusterPlan:
    check_options(job, "data", ("bucket_bytes", "gradient_as_bucket_view"))
    bucket_bytes = job.options.get("bucket_bytes", DDP_BUCKET_BYTES)
    as_view = job.options.get("gradient_as_bucket_view", False)
    if not isinstance(as_view, bool):
        raise UserError(f"options.gradient_as_bucket_view: must be true or false, got {as_view!r}")
    graph = job.graph(job.replica_batch(1, job.topo.size))
    group = list(range(job.topo.size))
    simulated = simulated_devices(job, group, 0)
    plan, comm = new_plan(job, simulated)
    train = job.mode == "train"
    buckets = dict(gradient_buckets(job, graph, bucket_bytes)) if train else {}
    # the reducer runs where there is someone to reduce with, on the devices DDP runs on
    ddp = train and job.topo.size > 1 and getattr(job.device, "kind", None) in DDP_DEVICE_KINDS
    reducer = reducers(job, graph, as_view) if ddp else {}
    ready = {op: layer for layer, op in last_gradient_ops(graph).items() if layer in reducer}
    prefixes = [f"d{d}." for d in simulated]
    filling: list[str] = []  # layers whose gradients are in the bucket being filled
    bucket_done: list[tuple[list[str], Done]] = []  # (its layers, who has the result)
    synced: Done = {d: () for d in simulated}

    def add(op: Op, inputs: list[str] | tuple[str, ...], extra: Done) -> None:
        """`op` on every simulated device, after its `inputs` (op names) and `extra`'s tasks."""
        for i, d in enumerate(simulated):
            plan.add(job.task(op, i, d, prefixed(prefixes[i], inputs) + extra.get(d, ()),
                              prefixes[i]))

    for op in graph.ops():
        if op.phase == "update" and reducer and not as_view and bucket_done:
            copies: Done = {d: () for d in simulated}
            for layers, done in bucket_done:  # finalize_bucket_dense, bucket by bucket
                for layer in layers:
                    out = reducer[layer].out_of_bucket(layer)
                    add(out, (), done)
                    for d in simulated:
                        copies[d] += (f"d{d}.{out.name}",)
            synced, bucket_done = copies, []  # once, before the first update op
        add(op, graph.predecessors(op.name), synced if op.phase == "update" else {})
        last = op.name
        if op.name in ready:
            layer = ready[op.name]
            into = reducer[layer].into_bucket(layer)
            add(into, (op.name,), {})
            filling.append(layer)
            last = into.name
        if op.name in buckets:
            name = f"allreduce.{op.layer}"
            after: Done = {d: (f"d{d}.{last}",) for d in simulated}
            done = comm.add(name, job.collective, group, buckets[op.name], after, layer=name)
            bucket_done.append((filling, done))
            filling = []
            for d in simulated:
                synced[d] += done.get(d, ())
    extra = {"buckets": len(buckets), "gradient_bytes": sum(buckets.values())}
    memory = dict(graph.memory)
    if reducer and not as_view:  # the buckets, allocated with DDP and held throughout
        memory["ddp_buckets_bytes"] = extra["gradient_bytes"]
        memory["peak_bytes"] += memory["ddp_buckets_bytes"]
    return ClusterPlan(plan, graph, graph.batch * job.topo.size, graph.flops * job.topo.size,
                       memory, extra)


data_parallel.mixes_devices = True  # type: ignore[attr-defined]  # each device its own model
