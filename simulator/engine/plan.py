"""ExecutionPlan: which device and stream runs each op, in what launch order, after what.

A strategy (single device, data parallel, ...) turns an OpGraph into a plan; the engine
runs plans and knows nothing of strategies. Costs are looked up once, when the plan is made,
so a plan is a pure description that can be simulated, stored or shipped to a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hardware_models.base import OpCost
from workloads.ops import Op, OpGraph

STREAM_OF_KIND = {"copy": "copy", "collective": "comm"}
JOIN = "join"  # the stream of join tasks: no stream at all (they end with their last input)
CATEGORY_OF_KIND = {"copy": "transfer", "collective": "communication"}


class Flow(NamedTuple):
    """Bytes moving from one device to another over a route of link channels.

    `hops` are (channel id, load): load > 1 says the flow stands for that many identical
    flows on that channel (a symmetric group simulated by one representative). `src` and
    `dst` are the topology's device indices (-1 when not a device)."""

    hops: tuple[tuple[str, float], ...]
    size_bytes: float
    latency_s: float
    src: int = -1
    dst: int = -1


@dataclass(frozen=True)
class Transfer:
    """What a communication task moves: flows that run concurrently; it ends with the last."""

    flows: tuple[Flow, ...]

    @property
    def size_bytes(self) -> float:
        return sum(f.size_bytes for f in self.flows)


class Task(NamedTuple):
    """One op placed on one device's stream, with its cost on that device (a named tuple:
    a full simulation holds millions of them)."""

    name: str
    op: Op
    device: int
    stream: str
    preds: tuple[str, ...]
    cost: OpCost
    launch_s: float
    transfer: Transfer | None = None  # when set, timed by the engine's links, not by `cost`

    @property
    def category(self) -> str:
        return CATEGORY_OF_KIND.get(self.op.kind, self.cost.bound)


@dataclass
class Plan:
    devices: list[Any]
    tasks: list[Task] = field(default_factory=list)
    links: dict[str, float] = field(default_factory=dict)  # channel id -> bytes per second
    replicas: int = 1  # identical devices each plan device stands for (symmetry)

    def add(self, task: Task) -> None:
        self.tasks.append(task)


def work_key(op: Op) -> tuple[Any, ...]:
    """Everything of `op` but its name and layer: what a device model's `op_cost` and
    `launch_s` read (docs/plugins.md), so that ops of equal work cost the same."""
    return (op.kind, op.phase, op.flops, op.bytes_read, op.bytes_written, op.dtype,
            op.work_items, op.param_bytes, op.gemm, op.kernels, op.attrs, op.calls)


# A graph's ops laid out for one device (`_single_layout`): one op per distinct work, and per
# op its name, the op, its stream, its predecessors and the index of its work
Layout = tuple[list[Op], list[tuple[str, Op, str, tuple[str, ...], int]]]


def _single_layout(graph: OpGraph) -> Layout:
    index: dict[tuple[Any, ...], int] = {}
    works: list[Op] = []
    rows = []
    preds = graph.predecessor_tuples()
    for op in graph.ops():
        i = index.setdefault(work_key(op), len(works))
        if i == len(works):
            works.append(op)
        rows.append((op.name, op, STREAM_OF_KIND.get(op.kind, "compute"), preds[op.name], i))
    return works, rows


def single_device_plan(graph: OpGraph, device: Any) -> Plan:
    """Every op on one device: kernels on the compute stream, the input copy on the copy
    engine. The device is asked once per distinct work (the repeated blocks of a network);
    which ops share a work is worked out once per graph, for every device it is planned on."""
    works, rows = graph.memo("single_device_layout", _single_layout)
    costs = [(device.op_cost(op), device.launch_s(op)) for op in works]
    plan = Plan(devices=[device])
    plan.tasks = [Task(name, op, 0, stream, preds, *costs[i])
                  for name, op, stream, preds, i in rows]
    return plan


def comm_task(name: str, device: int, transfer: Transfer, preds: tuple[str, ...],
              layer: str = "comm", launch_s: float = 0.0) -> Task:
    """A communication task on `device`'s comm stream, timed by the links of its flows."""
    size = transfer.size_bytes
    op = Op(name, "collective", "comm", layer, 0.0, size, size, "fp32", max(1, len(transfer.flows)))
    return Task(name, op, device, "comm", preds, OpCost(0.0, 0.0), launch_s, transfer)


def join_task(name: str, device: int, preds: tuple[str, ...], layer: str = "comm") -> Task:
    """A task that takes no time and holds no stream: it ends when the last of `preds` does
    (a barrier, so that n tasks can wait for n others through 2n edges, not n squared)."""
    op = Op(name, "collective", "comm", layer, 0.0, 0.0, 0.0, "fp32", 1)
    return Task(name, op, device, JOIN, preds, OpCost(0.0, 0.0), 0.0)
