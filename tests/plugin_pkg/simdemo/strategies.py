"""Strategy `replicas`: every device runs the whole model on its own batch, independently.

No gradient or parameter exchange (inference serving, or independent training runs): the
cluster's throughput is the devices' throughputs added up. `batch` is per device.
"""

from __future__ import annotations

from simulator.parallel.job import (
    ClusterPlan,
    Job,
    check_options,
    new_plan,
    op_task,
    prefixed,
    simulated_devices,
)


def replicas(job: Job) -> ClusterPlan:
    check_options(job, "replicas", ())
    graph = job.graph(job.replica_batch(1, job.topo.size))
    simulated = simulated_devices(job, list(range(job.topo.size)), 0)
    plan, _comm = new_plan(job, simulated)
    for op in graph.ops():
        for i, d in enumerate(simulated):
            prefix = f"d{d}."
            plan.add(op_task(op, i, job.device, prefixed(prefix, graph.predecessors(op.name)),
                             prefix))
    return ClusterPlan(plan, graph, graph.batch * job.topo.size, graph.flops * job.topo.size,
                       dict(graph.memory))
