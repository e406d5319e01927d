"""From a collective's phases to engine tasks: every flow of every device (`full`), or one
representative device whose flows carry the load of the whole group (`symmetric`).

Full: each device runs its flows of one step as one task on its comm stream, after its
previous step and after the flows that brought it data in the meantime. A device takes part
in one collective at a time (its part of the next starts when its part of the last, the
data it received included, is over), as collectives on one NCCL stream do. In a pipelined
phase a pair that also ran in the step before pays no latency: its chunk follows on the
heels of the one before, so a pipeline pays each hop's latency once, not once per chunk.

Symmetric: when every device of a group does the same thing at the same time, one device
stands for all. Its flows of a phase are one task whose steps are merged (bytes and
latencies summed: in lockstep nothing else changes between steps). The other devices are
not simulated, but their flows are not dropped: on every channel of the representative's
route, the flow's `load` is the bytes the whole phase puts on that channel over the bytes
the representative puts there, so a NIC shared by eight rails is shared eight ways. When
the flows of a phase differ (a flat ring crosses nodes at some hops only), the flows of the
device that gates the phase are the ones simulated: those that drain last with every
channel carrying the whole phase, since in lockstep everyone waits for the slowest. This is
exact when the group is symmetric (a ring inside a node, a hierarchical ring over equal
nodes, a flat ring over nodes); the tests check it against the full simulation. Phases
whose shape depends on the size (`Collective.linear` false: a pipeline's chunks) are
analysed at each size instead of once at 1 byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hardware_models.topology import Topology
from simulator.engine.plan import Flow, Plan, Transfer, comm_task
from simulator.parallel.collectives import Phase, collective

Done = dict[int, tuple[str, ...]]  # device -> tasks whose end means it has its result


@dataclass(frozen=True)
class _PhaseLoad:
    """One phase of a collective at 1 byte: routes, bytes per channel, who could gate it."""

    phase: Phase
    end: int  # 0: flows belong to their sender, 1: to their receiver (pulls)
    routes: dict[tuple[int, int], tuple[str, ...]]
    latency: dict[tuple[int, int], float]  # each pair's latency over the phase's steps
    total: dict[str, float]
    drains: dict[tuple[float, float], int]  # (latency s, busy s per byte a step) -> first device


@dataclass
class CommPlanner:
    """Adds collectives to `plan`; `plan_index` maps topology devices to plan devices."""

    plan: Plan
    topo: Topology
    plan_index: dict[int, int]
    symmetric: bool = False
    launch_s: float = 0.0
    _loads: dict[Any, list[_PhaseLoad]] = field(default_factory=dict)
    _busy: Done = field(default_factory=dict)  # full: what ends each device's last collective
    _routes: dict[tuple[int, int], tuple[tuple[str, ...], float]] = field(default_factory=dict)
    _speeds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, kind: str, group: list[int], size_bytes: float, after: Done,
            layer: str = "comm", **options: Any) -> Done:
        """Append collective `kind` of `size_bytes` over `group`; returns what ends it."""
        if len(group) < 2 or size_bytes <= 0:
            return {d: after.get(d, ()) for d in group}
        spec = collective.get(kind)
        if self.symmetric:
            rep = self._rep(group)
            at = 1.0 if spec.linear else size_bytes  # chunked phases change shape with size
            key = (kind, tuple(group), rep, at, repr(sorted(options.items())))
            if key not in self._loads:
                self._loads[key] = self._analyse(spec.phases(group, self.topo, at, **options), rep)
            return self._symmetric(name, self._loads[key], rep, size_bytes / at, after, layer)
        return self._full(name, spec.phases(group, self.topo, size_bytes, **options), after, layer)

    def add_phases(self, name: str, phases: list[Phase], group: list[int], after: Done,
                   layer: str = "comm") -> Done:
        """Append explicit phases (halo exchanges, point-to-point sends) among `group`."""
        phases = [ph for ph in phases if ph.pairs]
        if not phases:
            return {d: after.get(d, ()) for d in group}
        if self.symmetric:
            rep = self._rep(group)
            launch = self.launch_s if _initiates(phases, rep) else 0.0
            return self._symmetric(name, self._analyse(phases, rep), rep, 1.0, after, layer,
                                   launch)
        return self._full(name, phases, after, layer)

    def _rep(self, group: list[int]) -> int:
        return next(d for d in group if d in self.plan_index)

    def _route(self, src: int, dst: int) -> tuple[tuple[str, ...], float]:
        """The channels from src to dst and their latency (the topology's answers kept)."""
        if (src, dst) not in self._routes:
            route = self.topo.route(src, dst)
            self._routes[(src, dst)] = (route, self.topo.latency_s(route))
        return self._routes[(src, dst)]

    def _bandwidth(self, channel: str) -> float:
        if channel not in self._speeds:
            self._speeds[channel] = self.topo.bandwidth_bytes_per_s(channel)
        return self._speeds[channel]

    def _channels(self, route: tuple[str, ...]) -> None:
        for channel in route:
            if channel not in self.plan.links:
                self.plan.links[channel] = self._bandwidth(channel)

    def _full(self, name: str, phases: list[Phase], after: Done, layer: str) -> Done:
        # one collective at a time per device, as on an NCCL stream: a device's part starts
        # after its part in the previous one ended, receives included
        last: dict[int, tuple[str, ...]] = {}
        for d in set(after) | set(self._busy):
            last[d] = tuple(after.get(d, ())) + self._busy.get(d, ())
        received: dict[int, list[str]] = {}
        started: set[int] = set()
        warm: set[tuple[int, int]] = set()  # the pairs of the step before
        for p, phase in enumerate(phases):
            for step in range(phase.steps):
                tasks = self._full_step(f"{name}.p{p}.s{step}", phase, last, received, started,
                                        layer, warm if phase.pipelined else set())
                for src, dst, _ in phase.pairs:
                    if phase.initiator == "src":
                        received.setdefault(dst, []).append(tasks[src])
                warm = {(src, dst) for src, dst, _ in phase.pairs}
        done = {d: tuple(last.get(d, ())) + tuple(received.get(d, ()))
                for d in set(last) | set(received)}
        for p in {e for phase in phases for pair in phase.pairs for e in pair[:2]}:
            self._busy[p] = done.get(p, ())
        return done

    def _full_step(self, name: str, phase: Phase, last: dict[int, tuple[str, ...]],
                   received: dict[int, list[str]], started: set[int], layer: str,
                   warm: set[tuple[int, int]]) -> dict[int, str]:
        """One step's tasks; a pair in `warm` follows its chunk before (pipelined): no latency."""
        flows: dict[int, list[Flow]] = {}
        for src, dst, size in phase.pairs:
            who = src if phase.initiator == "src" else dst
            route, route_latency_s = self._route(src, dst)
            self._channels(route)
            hops = tuple((c, 1.0) for c in route)
            latency = 0.0 if (src, dst) in warm else route_latency_s
            flows.setdefault(who, []).append(Flow(hops, size, latency, src, dst))
        tasks = {}
        for who, fl in flows.items():
            task = f"{name}.d{who}"
            preds = tuple(dict.fromkeys(last.get(who, ()) + tuple(received.pop(who, ()))))
            launch = 0.0 if who in started else self.launch_s
            started.add(who)
            self.plan.add(comm_task(task, self.plan_index[who], Transfer(tuple(fl)), preds,
                                    layer, launch))
            last[who] = (task,)
            tasks[who] = task
        return tasks

    def _analyse(self, phases: list[Phase], rep: int) -> list[_PhaseLoad]:
        """Per phase (at 1 byte): the load on every channel and each device's drain time."""
        loads = []
        warm: set[tuple[int, int]] = set()  # the pairs of the phase before
        for phase in phases:
            end = 0 if phase.initiator == "src" else 1
            routes = {(s, d): self._route(s, d)[0] for s, d, _ in phase.pairs}
            latency = self._latencies(phase, routes, warm)
            total: dict[str, float] = {}
            for src, dst, size in phase.pairs:
                for channel in routes[(src, dst)]:
                    total[channel] = total.get(channel, 0.0) + size
            busy_s = {c: b / self._bandwidth(c) for c, b in total.items()}  # per byte
            drains: dict[tuple[float, float], int] = {}  # (latency, seconds per byte) -> device
            for pair in [p for p in routes if p[end] == rep] + list(routes):  # rep's first
                busy = max((busy_s[c] for c in routes[pair]), default=0.0)
                drains.setdefault((latency[pair], busy), int(pair[end]))
            loads.append(_PhaseLoad(phase, end, routes, latency, total, drains))
            warm = set(routes)
        return loads

    def _latencies(self, phase: Phase, routes: dict[tuple[int, int], tuple[str, ...]],
                   warm: set[tuple[int, int]]) -> dict[tuple[int, int], float]:
        """Each pair's latency over the phase: once a step, or in a pipelined phase once at
        its first step, and not at all for a pair that ran in the phase before."""
        if not phase.pipelined:
            return {pair: self._route(*pair)[1] * phase.steps for pair in routes}
        return {pair: 0.0 if pair in warm else self._route(*pair)[1] for pair in routes}

    def _flows(self, load: _PhaseLoad, rep: int, size_bytes: float) -> list[Flow]:
        """The flows of the device that gates the phase: the one whose flow takes longest with
        every channel carrying the whole phase's load (the representative on ties)."""
        steps = load.phase.steps
        best = max(lat + size_bytes * busy * steps for lat, busy in load.drains)
        mine = [who for (lat, busy), who in load.drains.items()
                if lat + size_bytes * busy * steps == best]
        who = rep if rep in mine else mine[0]
        pairs = [p for p in load.phase.pairs if p[load.end] == who]
        own: dict[str, float] = {}
        for src, dst, size in pairs:
            for channel in load.routes[(src, dst)]:
                own[channel] = own.get(channel, 0.0) + size
        flows = []
        for src, dst, size in pairs:
            route = load.routes[(src, dst)]
            self._channels(route)
            hops = tuple((c, load.total[c] / own[c]) for c in route)
            flows.append(Flow(hops, size * size_bytes * steps, load.latency[(src, dst)], src, dst))
        return flows

    def _symmetric(self, name: str, loads: list[_PhaseLoad], rep: int, size_bytes: float,
                   after: Done, layer: str, launch_s: float | None = None) -> Done:
        """The representative's tasks; it pays one launch, as in the full plan, unless it
        starts no flow of its own there (`launch_s` 0: it only receives)."""
        first_launch_s = self.launch_s if launch_s is None else launch_s
        preds = tuple(after.get(rep, ()))
        for p, load in enumerate(loads):
            merged = tuple(self._flows(load, rep, size_bytes))  # may be another device's flows
            task = f"{name}.p{p}.d{rep}"
            launch = first_launch_s if p == 0 else 0.0
            self.plan.add(comm_task(task, self.plan_index[rep], Transfer(merged), preds, layer,
                                    launch))
            preds = (task,)
        return {rep: preds}


def _initiates(phases: list[Phase], device: int) -> bool:
    """Whether `device` runs a flow of these phases on its own comm stream (full plan)."""
    return any((src if ph.initiator == "src" else dst) == device
               for ph in phases for src, dst, _ in ph.pairs)


def collective_plan(kind: str, topo: Topology, size_bytes: float, device: Any,
                    symmetric: bool, **options: Any) -> Plan:
    """A plan of one collective over every device of `topo`, alone (nothing else running)."""
    n = topo.size
    devices = [device] if symmetric else [device] * n
    plan = Plan(devices=devices, replicas=n if symmetric else 1)
    index = {0: 0} if symmetric else {d: d for d in range(n)}
    CommPlanner(plan, topo, index, symmetric).add(kind, kind, list(range(n)), size_bytes, {},
                                                  **options)
    return plan
