"""Strategy `parameter_server`: asynchronous SGD with sharded parameter servers (Downpour,
Dean et al. 2012).

`replicas` model replicas, each split over `partitions` devices by image locality (as the
`model` strategy does; 1 = a whole replica per device), process `batch` samples each per
step. Parameters live in `ps_shards` shards, each a contiguous range, on the devices left
over (`devices - replicas * partitions`), round robin; with none left over, the shards sit
on the worker devices (which then also apply the updates). Each step a worker device fetches
its slice of the parameters from the shards that hold it, runs forward and backward, and
pushes its slice of the gradient (n_fetch = n_push = 1, as in the paper's experiments); the
shards apply the updates.
There is no barrier between replicas: the reported step time is one worker's. Replicas are
simulated starting together, so their fetches and pushes meet at the shards at once, the
worst case for the servers' links; replicas that drift apart would share them better.
A step can be no shorter than the time the busiest server device needs to apply one update
from every replica to its shards (`ps_update_s`): a task in the plan, see
`_add_server_updates`.
"""

from __future__ import annotations

from dataclasses import replace

from simulator.core.errors import UserError
from simulator.engine.plan import Plan, Task
from simulator.parallel.job import ClusterPlan, Job, check_options, new_plan, strategy
from simulator.parallel.model import SpatialReplica, divided_memory
from simulator.parallel.pipeline import scale_op
from simulator.parallel.shard import interior
from workloads.ops import Op, OpGraph

PARAM_BYTES = 4  # fp32 parameters and gradients on the wire


def _layout(job: Job) -> tuple[int, int, list[int], list[int]]:
    """(partitions, replicas, worker devices, shard -> server device)."""
    n = job.topo.size
    partitions = job.int_option("partitions", 1)
    replicas = job.int_option("replicas", max(1, n // partitions))
    shards = job.int_option("ps_shards", 1)
    workers = replicas * partitions
    if workers > n:
        raise UserError(f"options: replicas x partitions = {workers} is more than the {n} devices")
    spare = list(range(workers, n))
    hosts = spare or list(range(workers))
    servers = [hosts[k % len(hosts)] for k in range(shards)]
    return partitions, replicas, list(range(workers)), servers


@strategy.register("parameter_server")
def downpour(job: Job) -> ClusterPlan:
    check_options(job, "parameter_server", ("partitions", "replicas", "ps_shards"))
    if job.mode != "train":
        raise UserError("parallel: parameter_server needs mode train")
    partitions, replicas, workers, servers = _layout(job)
    graph = job.graph(job.replica_batch(partitions, replicas))
    groups = [workers[r * partitions:(r + 1) * partitions] for r in range(replicas)]
    rep = interior(groups[0])
    simulated = [rep] if job.symmetric else list(range(job.topo.size))
    plan, comm = new_plan(job, simulated)
    size = graph.params * PARAM_BYTES
    slices = [(p / partitions, (p + 1) / partitions) for _ in groups for p in range(partitions)]
    ps = {"servers": servers, "slices": slices}
    fetched = comm.add("fetch", "ps_pull", workers, size, {}, "fetch", **ps)
    computed = {}
    for group in groups[:1] if job.symmetric else groups:
        mine = [d for d in group if d in simulated]
        replica = SpatialReplica(job, graph, comm, group, mine)
        computed.update(replica.build(fetched, skip_update=True))
    pushed = comm.add("push", "ps_push", workers, size, computed, "push", **ps)
    update = _update(graph, servers, replicas)
    update_s = job.device.op_cost(update).duration_s
    colocated = job.topo.size == len(workers)
    if colocated:  # the workers apply the updates too, on their own compute streams
        for d in simulated:
            preds = pushed.get(d, ())
            plan.add(job.task(update, comm.plan_index[d], d, preds, f"d{d}.ps."))
    else:
        _add_server_updates(job, plan, update, [comm.plan_index[d] for d in simulated])
    extra = {"replicas": replicas, "partitions": partitions, "ps_shards": len(servers),
             "ps_devices": job.topo.size - len(workers), "ps_update_s": update_s}
    return ClusterPlan(plan, graph, graph.batch * replicas, graph.flops * replicas,
                       divided_memory(graph, partitions), extra,
                       sample_devices=len(workers))


def _add_server_updates(job: Job, plan: Plan, update: Op, plan_devices: list[int]) -> None:
    """The steady state of asynchronous SGD: while the workers run step k, the busiest server
    applies the pushes of step k-1, so a step lasts at least one round of updates. The round
    is a task of its own on a `server` stream beside each worker (it needs no inputs of this
    step); from the worker's view it is time spent waiting on communication."""
    cost = job.device.op_cost(update)
    waiting = replace(update, kind="collective", layer="parameter_servers")
    for i in plan_devices:
        plan.add(Task(f"p{i}.ps.update", waiting, i, "server", (), cost, 0.0))


def _update(graph: OpGraph, servers: list[int], replicas: int) -> Op:
    """The busiest server device's work to apply one gradient push from every replica."""
    busiest = max(servers.count(d) for d in set(servers))
    return scale_op(graph.op("optimizer.step"), busiest * replicas / len(servers))
