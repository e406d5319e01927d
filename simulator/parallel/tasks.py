"""Strategy `tasks`: the tasks of a task graph placed over the devices, as a task runtime
(StarPU, PaRSEC) schedules a tile DAG.

Tasks are taken in program order (a topological order) and each goes to the device where it
would finish first (earliest finish time, a list schedule): the device's own queue, plus the
time to bring each predecessor's output from the device that made it over the topology's
link. Those outputs then really are sent (point-to-point transfers on the links, shared with
every other transfer in time), once per device that needs them. One run of the graph is the
step; memory per device is the graph's data (each device may touch any block). A network is
refused: this strategy only places tasks.
"""

from __future__ import annotations

from simulator.core.errors import UserError
from simulator.engine.plan import Plan
from simulator.parallel.collectives import Phase
from simulator.parallel.comm_plan import CommPlanner
from simulator.parallel.job import ClusterPlan, Job, check_options, op_task, strategy
from workloads.ops import Op
from workloads.task_graph import TaskGraph

MAX_TASK_DEVICES = 64  # every device is simulated (no symmetry in a list schedule)


class _Schedule:
    def __init__(self, job: Job) -> None:
        self.job, self.n = job, job.topo.size
        self.plan = Plan(devices=[job.device] * self.n, replicas=1)
        self.comm = CommPlanner(self.plan, job.topo, {d: d for d in range(self.n)}, False,
                                job.comm_launch_s())
        self.ready = [0.0] * self.n  # when each device's queue is free (the schedule's view)
        self.finish: dict[str, float] = {}
        self.place: dict[str, int] = {}
        self.out_bytes: dict[str, float] = {}
        self.sent: dict[tuple[str, int], tuple[str, ...]] = {}
        link = job.topo.intra or job.topo.inter
        self.link_bytes_per_s = link.bandwidth_bytes_per_s if link is not None else None

    def transfer_s(self, size_bytes: float) -> float:
        return 0.0 if self.link_bytes_per_s is None else size_bytes / self.link_bytes_per_s

    def best_device(self, op: Op, preds: list[str], cost_s: float) -> tuple[int, float]:
        best: tuple[float, int] | None = None
        for d in range(self.n):
            start = self.ready[d]
            for p in preds:
                move = 0.0 if self.place[p] == d else self.transfer_s(self.out_bytes[p])
                start = max(start, self.finish[p] + move)
            if best is None or start + cost_s < best[0]:
                best = (start + cost_s, d)
        assert best is not None
        return best[1], best[0]

    def inputs(self, preds: list[str], d: int) -> tuple[str, ...]:
        """What the task on device `d` waits for: local predecessors, and each remote one's
        output sent to `d` (once per device)."""
        waits: list[str] = []
        for p in preds:
            src = self.place[p]
            if src == d:
                waits.append(f"d{src}.{p}")
                continue
            if (p, d) not in self.sent:
                done = self.comm.add_phases(f"send.{p}.to.d{d}",
                                            [Phase(((src, d, self.out_bytes[p]),))], [src, d],
                                            {src: (f"d{src}.{p}",), d: ()}, f"send.{p}")
                self.sent[(p, d)] = done[d]
            waits.extend(self.sent[(p, d)])
        return tuple(waits)

    def add(self, op: Op, preds: list[str]) -> None:
        cost = self.job.device.op_cost(op).duration_s
        d, end = self.best_device(op, preds, cost)
        self.plan.add(op_task(op, d, self.job.device, self.inputs(preds, d), f"d{d}."))
        self.ready[d], self.finish[op.name], self.place[op.name] = end, end, d
        self.out_bytes[op.name] = op.bytes_written


@strategy.register("tasks")
def tasks(job: Job) -> ClusterPlan:
    check_options(job, "tasks", ())
    if not isinstance(job.model, TaskGraph):
        raise UserError("parallel: strategy 'tasks' places the tasks of a task graph; a "
                        "network runs with data, model, pipeline or parameter_server")
    if job.topo.size > MAX_TASK_DEVICES:
        raise UserError(f"parallel: strategy 'tasks' simulates every device, at most "
                        f"{MAX_TASK_DEVICES}; got {job.topo.size}")
    graph = job.graph(1)
    schedule = _Schedule(job)
    for op in graph.ops():
        schedule.add(op, graph.predecessors(op.name))
    counts = [sum(1 for d in schedule.place.values() if d == i) for i in range(schedule.n)]
    return ClusterPlan(schedule.plan, graph, 1, graph.flops, dict(graph.memory),
                       {"tasks_per_device": counts})


tasks.task_graphs = True  # type: ignore[attr-defined]  # the config accepts it for task graphs
