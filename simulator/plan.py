"""ExecutionPlan: which device and stream runs each op, in what launch order, after what.

A strategy (single device, data parallel, ...) turns an OpGraph into a plan; the engine
runs plans and knows nothing of strategies. Costs are looked up once, when the plan is made,
so a plan is a pure description that can be simulated, stored or shipped to a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hardware_models.base import OpCost
from workloads.ops import Op, OpGraph

STREAM_OF_KIND = {"copy": "copy", "collective": "comm"}
CATEGORY_OF_KIND = {"copy": "transfer", "collective": "communication"}


@dataclass(frozen=True)
class Task:
    """One op placed on one device's stream, with its cost on that device."""

    name: str
    op: Op
    device: int
    stream: str
    preds: tuple[str, ...]
    cost: OpCost
    launch_s: float
    transfer: Any = None  # a multi-device transfer, timed by the engine's links

    @property
    def category(self) -> str:
        return CATEGORY_OF_KIND.get(self.op.kind, self.cost.bound)


@dataclass
class Plan:
    devices: list[Any]
    tasks: list[Task] = field(default_factory=list)
    links: dict[str, Any] = field(default_factory=dict)
    replicas: int = 1  # identical devices each plan device stands for (symmetry)

    def add(self, task: Task) -> None:
        self.tasks.append(task)


def single_device_plan(graph: OpGraph, device: Any) -> Plan:
    """Every op on one device: kernels on the compute stream, the input copy on the copy engine."""
    plan = Plan(devices=[device])
    for op in graph.ops():
        plan.add(Task(op.name, op, 0, STREAM_OF_KIND.get(op.kind, "compute"),
                      tuple(graph.predecessors(op.name)), device.op_cost(op), device.launch_s(op)))
    return plan
