"""Strategy `single`: the whole step on one device, exactly as single-device `predict`."""

from __future__ import annotations

from simulator.core.errors import UserError
from simulator.engine.plan import single_device_plan
from simulator.parallel.job import ClusterPlan, Job, check_options, strategy


@strategy.register("single")
def single(job: Job) -> ClusterPlan:
    check_options(job, "single", ())
    if job.topo.size != 1:
        raise UserError(f"parallel: strategy 'single' runs on 1 device, got {job.topo.size}; "
                        "use data, model, pipeline or parameter_server")
    graph = job.graph(job.replica_batch(1, 1))
    return ClusterPlan(single_device_plan(graph, job.device_of(0)), graph, graph.batch, graph.flops,
                       dict(graph.memory))
