"""The SimPy engine: runs an ExecutionPlan and returns a Trace.

Each device has a host thread that launches its tasks in program order (paying each
task's launch time), and in-order streams (compute, copy engine, communication): a task
holds its stream from the moment it reaches the head of the queue, waits there for its
inputs as a CUDA stream waits on an event, then runs for its cost. So tiny kernels become
launch-bound, copies overlap compute, and cross-stream dependencies serialise as they do
on real hardware. A task that carries a `transfer` is timed by the links it crosses
(`simulator.bandwidth.Network`: each channel shared fairly by the flows in flight) instead
of by its cost. Models state costs; this module only does the waiting.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from simulator.engine.bandwidth import Network
from simulator.engine.plan import Plan, Task
from simulator.engine.trace import Span, Trace


class _Run:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.env = simpy.Environment()
        self.streams: dict[tuple[int, str], simpy.Resource] = {}
        self.done: dict[str, simpy.Event] = {t.name: self.env.event() for t in plan.tasks}
        self.end: dict[str, float] = {}
        self.category: dict[str, str] = {}
        self.trace = Trace([getattr(d, "name", str(i)) for i, d in enumerate(plan.devices)],
                           replicas=plan.replicas)
        self.network = Network(self.env, dict(plan.links), self.trace.links)

    def stream(self, device: int, name: str) -> simpy.Resource:
        key = (device, name)
        if key not in self.streams:
            self.streams[key] = simpy.Resource(self.env, capacity=1)
        return self.streams[key]

    def host(self, tasks: list[Task]) -> Generator[Any, Any, None]:
        for task in tasks:
            if task.launch_s > 0:
                yield self.env.timeout(task.launch_s)
            self.env.process(self.execute(task, self.env.now))

    def execute(self, task: Task, launched_s: float) -> Generator[Any, Any, None]:
        with self.stream(task.device, task.stream).request() as slot:
            yield slot
            got_stream = self.env.now
            pending = [self.done[p] for p in task.preds]
            if pending:
                yield self.env.all_of(pending)
            start = self.env.now
            if task.transfer is None:
                yield self.env.timeout(task.cost.duration_s)
            else:
                yield from self.move(task)
        self.end[task.name] = self.env.now
        self.category[task.name] = task.category
        self.trace.spans.append(self.span(task, launched_s, got_stream, start))
        self.done[task.name].succeed()

    def move(self, task: Task) -> Generator[Any, Any, None]:
        """All flows of the task's transfer at once; the task ends with the last of them."""
        assert task.transfer is not None
        sends = [self.env.process(self.network.send(f.hops, f.size_bytes, f.latency_s, task.name))
                 for f in task.transfer.flows]
        if sends:
            yield self.env.all_of(sends)

    def wait_cause(self, task: Task, launched_s: float, got_stream: float, start: float) -> str:
        """What held the task back: its inputs, the op ahead of it on the stream, or its launch."""
        ready = max((self.end[p] for p in task.preds), default=0.0)
        if task.preds and ready > got_stream:
            return self.category[max(task.preds, key=lambda p: self.end[p])]
        return "stream" if got_stream > launched_s else "launch"

    def span(self, task: Task, launched_s: float, got_stream: float, start: float) -> Span:
        op = task.op
        return Span(task.name, op.layer, op.phase, op.kind, task.device, task.stream, start,
                    self.env.now, launched_s, task.category, task.cost.overhead_s,
                    self.wait_cause(task, launched_s, got_stream, start), op.flops, op.bytes)

    def run(self) -> Trace:
        by_device: dict[int, list[Task]] = {}
        for task in self.plan.tasks:
            by_device.setdefault(task.device, []).append(task)
        for tasks in by_device.values():
            self.env.process(self.host(tasks))
        self.env.run()
        missing = [name for name, ev in self.done.items() if not ev.triggered]
        if missing:
            raise RuntimeError(f"plan deadlocked: {len(missing)} tasks never ran, "
                               f"e.g. {missing[0]}")
        self.trace.spans.sort(key=lambda s: (s.start_s, s.device, s.stream, s.name))
        self.trace.links.sort(key=lambda r: (r.start_s, r.channel, r.task))
        return self.trace


def simulate(plan: Plan) -> Trace:
    """Run `plan` to completion; deterministic for a given plan."""
    return _Run(plan).run()
