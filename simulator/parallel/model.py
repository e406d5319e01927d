"""Strategy `model`: one model replica split over all devices (DistBelief, Coates et al.).

`split: spatial` (default) cuts every layer by image locality (see `shard`): each device
computes its tile of every layer, exchanging borders with its neighbours before windowed
layers and their gradients after them; fully connected layers gather their input.
`split: layers` gives each device a contiguous block of layers and sends activations
across the block boundaries: the `pipeline` strategy with one micro-batch.
`batch` is the batch of the one replica. A halo is exchanged before the layer that needs it
starts (interior/border overlap is not modelled). Memory per device: the replica's, / P.
"""

from __future__ import annotations

import math
from typing import Any

from simulator.core.errors import UserError
from simulator.parallel.collectives import Phase
from simulator.parallel.comm_plan import CommPlanner, Done
from simulator.parallel.job import (
    ClusterPlan,
    Job,
    check_options,
    new_plan,
    prefixed,
    simulated_devices,
    strategy,
)
from simulator.parallel.pipeline import pipeline_plan
from simulator.parallel.shard import grid, halo_pairs, interior, shard_op
from workloads.ops import OpGraph
from workloads.precision import get_precision
from workloads.resolve import ResolvedLayer

SPLITS = ("spatial", "layers")


class SpatialReplica:
    """Adds one model replica, split over `group`, to a plan (used by `parameter_server` too)."""

    def __init__(self, job: Job, graph: OpGraph, comm: CommPlanner, group: list[int],
                 simulated: list[int]) -> None:
        self.job, self.graph, self.comm, self.group = job, graph, comm, group
        self.simulated = simulated
        self.parts = len(group)
        self.layers = {layer.name: layer for layer in job.layers_for(graph.batch)}
        self.args = {layer.name: layer.args() for layer in job.network().layers}
        self.act_bytes = get_precision(job.precision).act_bytes
        self.last_of: dict[tuple[str, str], str] = {}
        for op in graph.ops():
            self.last_of[(op.layer, op.phase)] = op.name
        self.extra: dict[int, dict[str, tuple[str, ...]]] = {d: {} for d in simulated}

    def build(self, after: Done, skip_update: bool = False) -> Done:
        """Every op of the step on every simulated device; returns each device's last ops."""
        last: Done = {}
        synced: Done = {d: () for d in self.simulated}
        for op in self.graph.ops():
            if op.phase == "update" and skip_update:
                continue
            if op.phase == "fwd" and op.name == f"{op.layer}.fwd":
                self._before_forward(op.layer, op.name)
            for d in self.simulated:
                prefix = f"d{d}."
                preds = prefixed(prefix, self.graph.predecessors(op.name))
                preds += self.extra[d].get(op.name, ())
                preds += after.get(d, ()) if not self.graph.predecessors(op.name) else ()
                preds += synced[d] if op.phase == "update" else ()
                plan_device = self.comm.plan_index[d]
                self.comm.plan.add(self.job.task(shard_op(op, self.parts), plan_device, d, preds,
                                                 prefix))
                last[d] = (prefix + op.name,)
            self._after(op.layer, op.phase, op.name, synced)
        return last

    def _group_after(self, op_names: list[str]) -> Done:
        return {d: prefixed(f"d{d}.", op_names) for d in self.simulated}

    def _wait(self, done: Done, op_names: list[str]) -> None:
        for d in self.simulated:
            for name in op_names:
                self.extra[d][name] = self.extra[d].get(name, ()) + done.get(d, ())

    def _before_forward(self, layer_name: str, op_name: str) -> None:
        layer = self.layers[layer_name]
        preds = self.graph.predecessors(op_name)
        if self.parts == 1:
            return
        pairs = halo_pairs(layer, self.args, self.group, self.graph.batch, self.act_bytes)
        if pairs:
            done = self.comm.add_phases(f"halo.{layer_name}", [Phase(pairs)], self.group,
                                        self._group_after(preds), f"halo.{layer_name}")
            self._wait(done, [op_name])
        elif layer.kind == "linear":  # mixes all input features: gather them
            size = self.graph.batch * math.prod(layer.in_shapes[0]) * self.act_bytes
            done = self.comm.add(f"gather.{layer_name}", "allgather", self.group, size,
                                 self._group_after(preds), f"gather.{layer_name}")
            self._wait(done, [op_name])

    def _after(self, layer_name: str, phase: str, op_name: str, synced: Done) -> None:
        """Gradient exchanges once a layer's last backward op of a phase is issued."""
        if self.parts == 1 or self.last_of.get((layer_name, phase)) != op_name:
            return
        layer: ResolvedLayer | None = self.layers.get(layer_name)
        if layer is None:
            return
        successors = self.graph.successors(op_name)
        if phase == "bwd_data":
            pairs = halo_pairs(layer, self.args, self.group, self.graph.batch, self.act_bytes)
            back = tuple((dst, src, b) for src, dst, b in pairs)
            if back:
                done = self.comm.add_phases(f"halo_grad.{layer_name}", [Phase(back)], self.group,
                                            self._group_after([op_name]), f"halo.{layer_name}")
                self._wait(done, successors)
            elif layer.kind == "linear":
                size = self.graph.batch * math.prod(layer.in_shapes[0]) * self.act_bytes
                done = self.comm.add(f"scatter.{layer_name}", "reducescatter", self.group, size,
                                     self._group_after([op_name]), f"gather.{layer_name}")
                self._wait(done, successors)
        elif phase == "bwd_weight" and layer.kind == "conv2d":  # shared weights: sum partials
            done = self.comm.add(f"allreduce.{layer_name}", "allreduce", self.group,
                                 layer.cost.params * 4.0, self._group_after([op_name]),
                                 f"allreduce.{layer_name}")
            for d in self.simulated:
                synced[d] += done.get(d, ())


def divided_memory(graph: OpGraph, parts: int) -> dict[str, float]:
    return {k: v / parts for k, v in graph.memory.items()}


@strategy.register("model")
def model_parallel(job: Job) -> ClusterPlan:
    check_options(job, "model", ("split",))
    split = job.options.get("split", "spatial")
    if split not in SPLITS:
        raise UserError(f"options.split: must be one of {', '.join(SPLITS)}, got {split!r}")
    replica = job.replica_batch(job.topo.size, 1)
    if split == "layers":
        return pipeline_plan(job, replica, micro_batches=1)
    graph = job.graph(replica)
    group = list(range(job.topo.size))
    simulated = simulated_devices(job, group, interior(group))
    plan, comm = new_plan(job, simulated)
    SpatialReplica(job, graph, comm, group, simulated).build({d: () for d in simulated})
    extra: dict[str, Any] = {"partitions": len(group), "grid": list(grid(len(group)))}
    return ClusterPlan(plan, graph, graph.batch, graph.flops, divided_memory(graph, len(group)),
                       extra)
