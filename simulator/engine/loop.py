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

from simulator.core.gc_pause import gc_paused
from simulator.engine.bandwidth import Network
from simulator.engine.plan import JOIN, Plan, Task
from simulator.engine.trace import Span, Trace


class _Run:
    """Streams are processes that compute ahead: a kernel's start and end follow from its
    stream, its launch and its inputs' ends (max, plus its cost), so a stream runs through
    its kernels without an event each and waits only for an input whose end is not yet known
    (a transfer, timed by the links as it happens, or a kernel of another stream that has not
    got there). An end is known no later than it happens, so a waiting stream resumes at or
    before the time it computes. Transfers start at their start time, when the clock is there.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.env = simpy.Environment()
        self.end: dict[str, float] = {}
        self.category: dict[str, str] = {}
        self.waiting: dict[str, simpy.Event] = {}  # inputs someone waits for, by name
        self.trace = Trace([getattr(d, "name", str(i)) for i, d in enumerate(plan.devices)],
                           replicas=plan.replicas)
        self.network = Network(self.env, dict(plan.links), self.trace.links)

    def known(self, name: str, end_s: float, category: str) -> None:
        self.end[name] = end_s
        self.category[name] = category
        event = self.waiting.pop(name, None)
        if event is not None:
            event.succeed()

    def inputs(self, task: Task) -> Generator[Any, Any, float]:
        """Wait until the ends of the task's inputs are known; the last of them."""
        for pred in task.preds:
            if pred not in self.end:
                if pred not in self.waiting:
                    self.waiting[pred] = self.env.event()
                yield self.waiting[pred]
        return max((self.end[p] for p in task.preds), default=0.0)

    def stream(self, tasks: list[tuple[Task, float]]) -> Generator[Any, Any, None]:
        """One in-order stream: a task holds it from when it reaches the head of the queue
        (the one before ended and the host launched it) until it ends."""
        free_s, end = 0.0, self.end
        for task, launched_s in tasks:
            got_stream = max(free_s, launched_s)
            ready_s = 0.0
            if task.preds:
                try:  # inputs already ended: no generator, no event
                    ready_s = max(map(end.__getitem__, task.preds))
                except KeyError:
                    ready_s = yield from self.inputs(task)
            start = max(got_stream, ready_s)
            if task.transfer is None:
                end_s = start + task.cost.duration_s
            else:
                if start > self.env.now:
                    yield self.env.timeout(start - self.env.now)
                yield from self.move(task)
                end_s = self.env.now
            free_s = end_s
            category = task.category
            self.trace.spans.append(self.span(task, launched_s, got_stream, ready_s, start,
                                              end_s, category))
            self.known(task.name, end_s, category)

    def join(self, task: Task) -> Generator[Any, Any, None]:
        end_s = yield from self.inputs(task)
        self.known(task.name, end_s, self.category[max(task.preds, key=self.end.__getitem__)]
                   if task.preds else "idle")

    def move(self, task: Task) -> Generator[Any, Any, None]:
        """All flows of the task's transfer at once; the task ends with the last of them."""
        assert task.transfer is not None
        yield self.network.transfer(((f.hops, f.size_bytes, f.latency_s)
                                     for f in task.transfer.flows), task.name)

    def wait_cause(self, task: Task, launched_s: float, got_stream: float, ready_s: float) -> str:
        """What held the task back: its inputs, the op ahead of it on the stream, or its launch."""
        if task.preds and ready_s > got_stream:
            return self.category[max(task.preds, key=self.end.__getitem__)]
        return "stream" if got_stream > launched_s else "launch"

    def span(self, task: Task, launched_s: float, got_stream: float, ready_s: float,
             start: float, end_s: float, category: str) -> Span:
        op = task.op
        return Span(task.name, op.layer, op.phase, op.kind, task.device, task.stream, start,
                    end_s, launched_s, category, task.cost.overhead_s,
                    self.wait_cause(task, launched_s, got_stream, ready_s), op.flops, op.bytes)

    def run(self) -> Trace:
        # the host thread launches its device's tasks in program order, paying each launch:
        # a task's launch time is the sum of the launches up to it (the host never waits)
        streams: dict[tuple[int, str], list[tuple[Task, float]]] = {}
        host_s: dict[int, float] = {}
        for task in self.plan.tasks:
            if task.stream == JOIN:
                self.env.process(self.join(task))
                continue
            host_s[task.device] = launched = host_s.get(task.device, 0.0) + task.launch_s
            streams.setdefault((task.device, task.stream), []).append((task, launched))
        for key in sorted(streams):
            self.env.process(self.stream(streams[key]))
        self.env.run()
        missing = [t.name for t in self.plan.tasks if t.name not in self.end]
        if missing:
            raise RuntimeError(f"plan deadlocked: {len(missing)} tasks never ran, "
                               f"e.g. {missing[0]}")
        self.trace.spans.sort(key=lambda s: (s.start_s, s.device, s.stream, s.name))
        self.trace.links.sort(key=lambda r: (r.start_s, r.channel, r.task))
        return self.trace


def simulate(plan: Plan) -> Trace:
    """Run `plan` to completion; deterministic for a given plan."""
    with gc_paused():
        return _Run(plan).run()
