"""What a parallel strategy is given (`Job`) and what it returns (`ClusterPlan`), the
`strategy` registry, and the helpers every strategy uses to place ops on devices.

A strategy turns one step of a model on a cluster into a `simulator.plan.Plan`. When the
devices of a group all do the same work at the same time, a strategy may simulate one of
them (`Job.symmetric`): the plan then has one device standing for `plan.replicas`, and the
collectives it runs carry the load of the whole group on every link (see `comm_plan`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hardware_models.slowed import slowed
from hardware_models.topology import Topology
from simulator.core import plugins
from simulator.core.errors import UserError
from simulator.core.registry import Registry
from simulator.engine.plan import STREAM_OF_KIND, Plan, Task
from simulator.parallel.comm_plan import CommPlanner
from workloads.model_def import ModelDef
from workloads.ops import Op, OpGraph
from workloads.resolve import ResolvedLayer
from workloads.task_graph import TaskGraph

FULL_SIMULATION_MAX_DEVICES = 8  # 'auto': simulate every device up to this many
SIMULATE_CHOICES = ("auto", "full", "symmetric")


GraphFactory = Callable[[int], OpGraph]  # batch -> the step's OpGraph (every workload option)


@dataclass
class Job:
    """One training or inference step of `model` on every device of `topo`.

    `batch` is what every device processes per step (its own samples under data parallelism;
    the samples its part of the model sees under model or pipeline parallelism), or None
    when the workload gives `global_batch`, the samples of the whole cluster per step.
    Strategies get their graphs from `graph(batch)`, built once per batch by the caller's
    factory with all of the workload's options; they never build one themselves."""

    model: ModelDef | TaskGraph
    device: Any
    topo: Topology
    batch: int | None
    graph_for: GraphFactory
    layers_for: Callable[[int], list[ResolvedLayer]]
    precision: str = "fp32"
    mode: str = "train"
    optimizer: str = "sgd"
    collective: str = "allreduce"
    options: dict[str, Any] = field(default_factory=dict)
    global_batch: int | None = None
    slowdowns: dict[int, float] = field(default_factory=dict)  # device -> kernel time factor
    kinds: tuple[Any, ...] = ()  # a mixed cluster: each topology device's model (else: device)
    _graphs: dict[int, OpGraph] = field(default_factory=dict, repr=False)
    _slowed: dict[tuple[int, float], Any] = field(default_factory=dict, repr=False)
    _costs: dict[tuple[int, str, int], tuple[Any, float, Op]] = field(default_factory=dict,
                                                                    repr=False)

    def graph(self, batch: int) -> OpGraph:
        if batch not in self._graphs:
            self._graphs[batch] = self.graph_for(batch)
        return self._graphs[batch]

    def network(self) -> ModelDef:
        """The model, for strategies that cut a network's layers (not a task graph)."""
        if isinstance(self.model, TaskGraph):
            raise UserError(f"task graph {self.model.name}: this strategy splits a network's "
                            "layers; a task graph runs on one device ('single')")
        return self.model

    def replica_batch(self, devices_per_replica: int, replicas: int) -> int:
        """Samples one model replica processes per step: `batch` times the devices that
        share the replica's samples, or the global batch divided among the replicas."""
        if self.global_batch is None:
            assert self.batch is not None
            return self.batch * devices_per_replica
        if self.global_batch % replicas:
            raise UserError(f"global_batch: {self.global_batch} samples do not divide among "
                            f"{replicas} model replicas")
        return self.global_batch // replicas

    @property
    def symmetric(self) -> bool:
        how = self.options.get("simulate", "auto")
        if how not in SIMULATE_CHOICES:
            raise UserError(f"options.simulate: must be one of {', '.join(SIMULATE_CHOICES)}, "
                            f"got {how!r}")
        differ = self.differ
        if how == "symmetric" and differ:
            raise UserError(f"options.simulate: 'symmetric' simulates one device for all, but "
                            f"{differ} makes devices differ; use 'full' or 'auto'")
        return how == "symmetric" or (
            how == "auto" and not differ and self.topo.size > FULL_SIMULATION_MAX_DEVICES)

    @property
    def differ(self) -> str:
        """What makes the devices differ (empty: nothing; one may stand for all)."""
        if self.slowdowns:
            return "hardware.stragglers"
        if self.kinds:
            return "a mix of device kinds"
        return "" if self.topo.uniform else "the topology (a graph, or a degraded link)"

    def int_option(self, name: str, default: int) -> int:
        value = self.options.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"options.{name}: must be a positive integer, got {value!r}")
        return value

    def device_of(self, d: int) -> Any:
        """The model of topology device `d`: the job's device (or its kind in a mixed
        cluster), slowed where it straggles."""
        base = self.kinds[d] if self.kinds else self.device
        factor = self.slowdowns.get(d)
        if factor is None:
            return base
        key = (id(base), factor)
        if key not in self._slowed:
            self._slowed[key] = slowed(base, factor)
        return self._slowed[key]

    def task(self, op: Op, plan_device: int, d: int, preds: tuple[str, ...],
             prefix: str) -> Task:
        """`op` on topology device `d` (plan device `plan_device`), as `op_task`; each device
        model is asked once per op (a data-parallel group runs the same ops n times)."""
        device = self.device_of(d)
        key = (id(device), op.name, id(op))
        cached = self._costs.get(key)
        if cached is None or cached[2] is not op:
            cached = self._costs[key] = (device.op_cost(op), device.launch_s(op), op)
        stream = STREAM_OF_KIND.get(op.kind, "compute")
        return Task(prefix + op.name, op, plan_device, stream, preds, cached[0], cached[1])

    def comm_launch_s(self) -> float:
        """Host time to launch one collective kernel (as one NCCL kernel per collective)."""
        return float(self.device.launch_s(Op("comm", "collective", "comm", "comm", 0.0, 0.0, 0.0,
                                              "fp32", 1)))


@dataclass
class ClusterPlan:
    """A strategy's plan plus what the results need to know about it."""

    plan: Plan
    graph: OpGraph  # the graph one model replica runs per step (FLOPs, parameters)
    samples_per_step: int  # samples the whole cluster processes per step
    flops_per_step: float  # FLOPs of the whole cluster per step
    memory: dict[str, float]  # bytes on the busiest device
    extra: dict[str, Any] = field(default_factory=dict)  # strategy-specific result fields
    sample_devices: int | None = None  # devices that process samples (default: all)


Strategy = Callable[[Job], ClusterPlan]
strategy: Registry[Strategy] = plugins.strategy


def check_options(job: Job, name: str, valid: tuple[str, ...]) -> None:
    allowed = valid + ("simulate",)
    for key in job.options:
        if key not in allowed:
            raise UserError(f"options: unknown key '{key}' for strategy {name}; valid keys: "
                            f"{', '.join(sorted(allowed))}")


def op_task(op: Op, plan_device: int, device: Any, preds: tuple[str, ...], prefix: str) -> Task:
    """`op` on one device, its name and its predecessors' names under `prefix`."""
    stream = STREAM_OF_KIND.get(op.kind, "compute")
    return Task(prefix + op.name, op, plan_device, stream, preds, device.op_cost(op),
                device.launch_s(op))


def prefixed(prefix: str, names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(prefix + n for n in names)


def simulated_devices(job: Job, group: list[int], rep: int) -> list[int]:
    """The devices of `group` the plan simulates: the representative alone, or all."""
    return [rep] if job.symmetric else list(group)


def new_plan(job: Job, simulated: list[int]) -> tuple[Plan, CommPlanner]:
    """A plan over the simulated devices and a planner for their collectives."""
    replicas = job.topo.size if job.symmetric else 1
    plan = Plan(devices=[job.device_of(d) for d in simulated], replicas=replicas)
    index = {d: i for i, d in enumerate(simulated)}
    return plan, CommPlanner(plan, job.topo, index, job.symmetric, job.comm_launch_s())
