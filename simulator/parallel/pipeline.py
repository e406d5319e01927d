"""Strategy `pipeline`: GPipe. Contiguous blocks of layers (stages), one per device, and the
batch cut into `micro_batches`.

Stages are balanced by the layers' time on the device (the contiguous split that minimises
the slowest stage). Each stage runs the forward pass of every micro-batch, then their
backward passes (last micro-batch first), then its share of the optimizer step; the
activation of a stage's last layer (forward) and the gradient of its first layer's input
(backward) cross to the neighbouring stage over the topology. Activations of every
micro-batch are kept (no re-materialisation). `batch` is the batch of the one replica.
"""

from __future__ import annotations

import math
from dataclasses import replace

from simulator.core.errors import UserError
from simulator.engine.plan import Plan
from simulator.parallel.collectives import Phase
from simulator.parallel.comm_plan import CommPlanner
from simulator.parallel.job import ClusterPlan, Job, check_options, strategy
from workloads.ops import Op, OpGraph
from workloads.precision import get_precision


def balanced_stages(times: list[float], stages: int) -> list[int]:
    """Stage index of each layer: contiguous, minimising the largest stage time."""
    n = len(times)
    prefix = [0.0]
    for t in times:
        prefix.append(prefix[-1] + t)
    best = [[math.inf] * (n + 1) for _ in range(stages + 1)]
    cut = [[0] * (n + 1) for _ in range(stages + 1)]
    best[0][0] = 0.0
    for s in range(1, stages + 1):
        for i in range(s, n + 1):
            for j in range(s - 1, i):
                cost = max(best[s - 1][j], prefix[i] - prefix[j])
                if cost < best[s][i]:
                    best[s][i], cut[s][i] = cost, j
    owner, i = [0] * n, n
    for s in range(stages, 0, -1):
        j = cut[s][i]
        owner[j:i] = [s - 1] * (i - j)
        i = j
    return owner


def scale_op(op: Op, fraction: float) -> Op:
    return replace(op, flops=op.flops * fraction, bytes_read=op.bytes_read * fraction,
                   bytes_written=op.bytes_written * fraction, param_bytes=op.param_bytes * fraction,
                   work_items=max(1, math.ceil(op.work_items * fraction)))


def _stage_of_layers(job: Job, graph: OpGraph, stages: int) -> dict[str, int]:
    layers = [layer.name for layer in job.layers_for(graph.batch)]
    if stages > len(layers):
        raise UserError(f"devices: {stages} pipeline stages but the model has only "
                        f"{len(layers)} layers")
    times = dict.fromkeys(layers, 0.0)
    for op in graph.ops():
        if op.layer in times:
            times[op.layer] += job.device.op_cost(op).duration_s
    owner = balanced_stages([times[name] for name in layers], stages)
    stage = dict(zip(layers, owner, strict=True))
    stage.update({"input": 0, "loss": stages - 1})
    return stage


class _Pipeline:
    def __init__(self, job: Job, micro: OpGraph, stage: dict[str, int], comm: CommPlanner):
        self.job, self.micro, self.stage, self.comm = job, micro, stage, comm
        resolved = job.layers_for(micro.batch)
        self.layers = {layer.name: layer for layer in resolved}
        self.last_layer = resolved[-1]
        self.act_bytes = get_precision(job.precision).act_bytes
        self.sent: dict[tuple[int, str, int], tuple[str, ...]] = {}

    def add(self, j: int, op: Op) -> None:
        s = self.stage[op.layer]
        preds: tuple[str, ...] = ()
        for p in self.micro.predecessors(op.name):
            src = self.stage[self.micro.op(p).layer]
            preds += (f"m{j}.{p}",) if src == s else self.send(j, p, src, s)
        self.comm.plan.add(self.job.task(op, s, s, preds, f"m{j}."))

    def send(self, j: int, pred: str, src: int, dst: int) -> tuple[str, ...]:
        """The tensor `pred` produced for micro-batch j, sent from stage src to stage dst."""
        key = (j, pred, dst)
        if key not in self.sent:
            op = self.micro.op(pred)
            layer = self.layers.get(op.layer, self.last_layer)  # the loss: its input's shape
            shape = layer.cost.out_shape if op.phase in ("fwd", "loss") else layer.in_shapes[0]
            size = self.micro.batch * math.prod(shape) * self.act_bytes
            done = self.comm.add_phases(f"m{j}.send.{pred}.to{dst}", [Phase(((src, dst, size),))],
                                        [src, dst], {src: (f"m{j}.{pred}",)}, f"send.{op.layer}")
            self.sent[key] = done.get(dst, ())
        return self.sent[key]


def pipeline_plan(job: Job, replica_batch: int, micro_batches: int) -> ClusterPlan:
    stages = job.topo.size
    if replica_batch % micro_batches:
        raise UserError(f"options.micro_batches: {micro_batches} does not divide the batch "
                        f"of the replica ({replica_batch})")
    full = job.graph(replica_batch)
    micro = job.graph(replica_batch // micro_batches)
    stage = _stage_of_layers(job, full, stages)
    plan = Plan(devices=[job.device_of(d) for d in range(stages)])
    comm = CommPlanner(plan, job.topo, {d: d for d in range(stages)}, False, job.comm_launch_s())
    pipe = _Pipeline(job, micro, stage, comm)
    split = micro.order.index("loss.bwd") if job.mode == "train" else len(micro.order)
    ops = [micro.op(name) for name in micro.order]
    for j in range(micro_batches):
        for op in ops[:split]:
            pipe.add(j, op)
    for j in reversed(range(micro_batches)):
        for op in ops[split:]:
            if op.phase != "update":
                pipe.add(j, op)
    if job.mode == "train":
        _add_updates(job, full, micro, stage, plan, micro_batches)
    return ClusterPlan(plan, full, full.batch, full.flops, _stage_memory(job, full, stage, stages),
                       {"stages": stages, "micro_batches": micro_batches})


def _add_updates(job: Job, full: OpGraph, micro: OpGraph, stage: dict[str, int], plan: Plan,
                 micro_batches: int) -> None:
    """Each stage's share of the optimizer, after all its micro-batches' weight gradients."""
    step = full.op("optimizer.step")
    params = {layer.name: layer.cost.params for layer in job.layers_for(full.batch)}
    total = max(1, sum(params.values()))
    for s in range(job.topo.size):
        mine = [p for p in micro.predecessors("optimizer.step") if stage[micro.op(p).layer] == s]
        share = sum(v for k, v in params.items() if stage.get(k) == s) / total
        preds = tuple(f"m{j}.{p}" for j in range(micro_batches) for p in mine)
        plan.add(job.task(scale_op(step, share), s, s, preds, f"s{s}."))


def _stage_memory(job: Job, full: OpGraph, stage: dict[str, int], stages: int) -> dict[str, float]:
    """The fullest stage's memory: weights and optimizer state by its share of the parameters,
    saved activations by its share of them (all micro-batches are kept), the input on stage 0."""
    layers = job.layers_for(full.batch)
    params = max(1, sum(layer.cost.params for layer in layers))
    saved = max(1.0, sum(layer.cost.saved_elems for layer in layers))
    best: dict[str, float] = {}
    for s in range(stages):
        mine = [layer for layer in layers if stage[layer.name] == s]
        p_share = sum(layer.cost.params for layer in mine) / params
        a_share = sum(layer.cost.saved_elems for layer in mine) / saved
        memory = {k: v * p_share for k, v in full.memory.items() if k != "peak_bytes"}
        memory["activations_bytes"] = full.memory.get("activations_bytes", 0.0) * a_share
        memory["input_bytes"] = full.memory.get("input_bytes", 0.0) if s == 0 else 0.0
        memory["transient_bytes"] = full.memory.get("transient_bytes", 0.0)
        memory["peak_bytes"] = sum(memory.values())
        if memory["peak_bytes"] > best.get("peak_bytes", -1.0):
            best = memory
    return best


@strategy.register("pipeline")
def pipeline(job: Job) -> ClusterPlan:
    check_options(job, "pipeline", ("micro_batches",))
    replica = job.replica_batch(job.topo.size, 1)
    return pipeline_plan(job, replica, job.int_option("micro_batches",
                                                      gpipe_micro_batches(replica, job.topo.size)))


def gpipe_micro_batches(replica_batch: int, stages: int) -> int:
    """GPipe's choice (Huang et al. 2019, sec. 2.3: the bubble is negligible once there are
    at least 4x as many micro-batches as stages): the largest divisor of the batch up to
    4 x stages."""
    return max(m for m in range(1, min(replica_batch, 4 * stages) + 1) if replica_batch % m == 0)
