"""Shared links: bytes in flight over directed channels, each channel's bandwidth shared fairly.

A flow crosses one or more channels (one direction of one cable). While several flows are
in flight their rates are max-min fair (progressive filling): every flow's rate rises
together until some channel is full; the flows through that channel are frozen at that rate
and the others keep rising. Rates are recomputed whenever a flow starts or ends, so two
flows on one link each get half of it and a lone flow gets all of it. Only the flows that
share channels, directly or through other flows, with one that started or ended have their
rates recomputed: the fair shares of a set of channels no flow connects to the rest do not
depend on them (flows on disjoint links, the chains inside the nodes of a large cluster).

A hop may carry a `load` > 1: the flow stands for `load` identical flows on that channel
(the ghosts of a symmetric group that is simulated by one representative), and it uses the
channel as that many flows would. The latency of a flow is a pure delay before its bytes
start to move; it does not occupy bandwidth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import simpy

from simulator.engine.trace import LinkSpan

DONE_TOLERANCE = 1e-9  # a flow with less than this fraction of its bytes left has finished
LEVEL_TOLERANCE = 1e-12  # channels filling at the same level (to rounding) fill together


class LinkLike(Protocol):
    bandwidth_bytes_per_s: float
    latency_s: float


@dataclass(eq=False, slots=True)
class _Flow:
    task: str
    hops: tuple[tuple[str, float], ...]
    size_bytes: float
    remaining_bytes: float
    on_done: Callable[[], None]
    started_s: float
    seq: int = 0  # order of start: the order of the flows in flight
    rate_bytes_per_s: float = 0.0


@dataclass
class Network:
    """The channels of one plan and the flows now crossing them."""

    env: simpy.Environment
    bandwidth_bytes_per_s: dict[str, float]
    records: list[LinkSpan] = field(default_factory=list)
    _active: list[_Flow] = field(default_factory=list)
    _on: dict[str, dict[_Flow, None]] = field(default_factory=dict)  # channel -> its flows
    _changed: set[str] = field(default_factory=set)  # channels whose flows changed
    _started: int = 0
    _last_s: float = 0.0
    _version: int = 0
    _flush_pending: bool = False

    def transfer(self, flows: Iterable[tuple[tuple[tuple[str, float], ...], float, float]],
                 task: str = "") -> simpy.Event:
        """Start (hops, size_bytes, latency_s) flows now; the event fires when the last ends.
        Each flow waits its latency, then moves its bytes over its hops. Callbacks, not a
        process per flow: a collective's thousands of flows cost events only as they end."""
        done = self.env.event()
        by_latency: dict[float, list[tuple[tuple[tuple[str, float], ...], float]]] = {}
        for hops, size_bytes, latency_s in flows:
            by_latency.setdefault(latency_s, []).append((hops, size_bytes))
        left = [sum(len(group) for group in by_latency.values())]

        def one_done() -> None:
            left[0] -= 1
            if left[0] == 0:
                done.succeed()

        if not left[0]:
            done.succeed()
        def starter(group: list[tuple[tuple[tuple[str, float], ...], float]]
                    ) -> Callable[[Any], None]:
            return lambda _event: self._start(group, task, one_done)

        for latency_s, group in by_latency.items():
            if latency_s > 0:
                self.env.timeout(latency_s).callbacks.append(starter(group))
            else:
                self._start(group, task, one_done)
        return done

    def send(self, hops: tuple[tuple[str, float], ...], size_bytes: float, latency_s: float,
             task: str = "") -> Generator[Any, Any, None]:
        """A SimPy process body: wait the latency, then move `size_bytes` over `hops`."""
        yield self.transfer([(hops, size_bytes, latency_s)], task)

    def _start(self, group: list[tuple[tuple[tuple[str, float], ...], float]], task: str,
               one_done: Callable[[], None]) -> None:
        moving = [(hops, size) for hops, size in group if size > 0 and hops]
        for _ in range(len(group) - len(moving)):
            one_done()
        if not moving:
            return
        self._advance()
        now = self.env.now
        for hops, size_bytes in moving:
            self._started += 1
            flow = _Flow(task, hops, size_bytes, size_bytes, one_done, now, self._started)
            self._active.append(flow)
            self._enter(flow)
        if not self._flush_pending:  # flows starting at the same instant share one recompute
            self._flush_pending = True
            self.env.timeout(0).callbacks.append(self._flush)

    def _flush(self, _event: Any) -> None:
        self._flush_pending = False
        self._advance()
        self._reschedule()

    def _advance(self) -> None:
        """Move every active flow forward to now at its current rate."""
        elapsed = self.env.now - self._last_s
        if elapsed > 0:
            for flow in self._active:
                flow.remaining_bytes -= flow.rate_bytes_per_s * elapsed
        self._last_s = self.env.now

    def _reschedule(self) -> None:
        self._version += 1
        if not self._active:
            self._changed.clear()
            return
        if any(f.rate_bytes_per_s <= 0 for f in self._fair_rates(self._touched())):
            raise RuntimeError("a flow's fair share of its links fell to zero")
        next_s = min(f.remaining_bytes / f.rate_bytes_per_s for f in self._active)
        timer = self.env.timeout(max(next_s, 0.0))
        version = self._version
        timer.callbacks.append(lambda _ev: self._on_timer(version))

    def _on_timer(self, version: int) -> None:
        if version != self._version:
            return  # the rates changed since this timer was set
        self._advance()
        # done: almost no bytes left, or less time left than the clock can still resolve
        resolution_s = 8 * math.ulp(self.env.now)
        finished: list[_Flow] = []
        active: list[_Flow] = []
        for f in self._active:
            # a flow that joined at this very instant has no rate until the pending recompute
            left_s = f.remaining_bytes / f.rate_bytes_per_s if f.rate_bytes_per_s > 0 else math.inf
            done = f.remaining_bytes <= DONE_TOLERANCE * f.size_bytes or left_s <= resolution_s
            (finished if done else active).append(f)
        self._active = active
        for flow in finished:
            self._leave(flow)
        for flow in finished:
            self._record(flow)
            flow.on_done()
        self._reschedule()

    def _record(self, flow: _Flow) -> None:
        for channel, load in flow.hops:
            self.records.append(LinkSpan(channel, flow.task, flow.started_s, self.env.now,
                                         flow.size_bytes, load))

    def _enter(self, flow: _Flow) -> None:
        for channel, _ in flow.hops:
            self._on.setdefault(channel, {})[flow] = None
            self._changed.add(channel)

    def _leave(self, flow: _Flow) -> None:
        for channel, _ in flow.hops:
            on = self._on[channel]
            del on[flow]
            if not on:
                del self._on[channel]
            self._changed.add(channel)

    def _touched(self) -> list[_Flow]:
        """The flows in flight connected through shared channels to a channel whose flows
        changed since the last recompute, in order of start."""
        seen: set[str] = set()
        flows: dict[_Flow, None] = {}
        todo = [c for c in self._changed if c in self._on]
        self._changed.clear()
        seen.update(todo)
        while todo:
            for flow in self._on[todo.pop()]:
                if flow not in flows:
                    flows[flow] = None
                    for channel, _ in flow.hops:
                        if channel not in seen:
                            seen.add(channel)
                            todo.append(channel)
        return sorted(flows, key=lambda f: f.seq)

    def _fair_rates(self, flows: list[_Flow]) -> list[_Flow]:
        """Max-min fair rates of `flows` (all the flows on their channels) by progressive
        filling, each hop weighted by its load: raise all rates together until channels
        fill; freeze the flows through them; repeat. Returns `flows`."""
        free: dict[str, float] = {}
        demand: dict[str, float] = {}
        members: dict[str, list[_Flow]] = {}
        for flow in flows:
            flow.rate_bytes_per_s = -1.0  # not yet fixed
            for channel, load in flow.hops:
                if channel not in free:
                    free[channel] = self.bandwidth_bytes_per_s[channel]
                    demand[channel] = load
                    members[channel] = [flow]
                else:
                    demand[channel] += load
                    members[channel].append(flow)
        while demand:
            level = min(free[c] / demand[c] for c in demand)
            full = [c for c in demand if free[c] / demand[c] <= level * (1 + LEVEL_TOLERANCE)]
            for channel in full:
                for flow in members[channel]:
                    if flow.rate_bytes_per_s < 0:
                        self._freeze(flow, level, free, demand)
                demand.pop(channel, None)  # every flow through a full channel is frozen now
            for channel in [c for c, d in demand.items() if d <= 0]:
                del demand[channel]
        return flows

    @staticmethod
    def _freeze(flow: _Flow, level: float, free: dict[str, float],
                demand: dict[str, float]) -> None:
        flow.rate_bytes_per_s = level
        for channel, load in flow.hops:
            left = free[channel] - level * load
            free[channel] = left if left > 0.0 else 0.0
            if channel in demand:
                demand[channel] -= load
