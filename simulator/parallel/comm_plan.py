"""From a collective's phases to engine tasks: every flow of every device (`full`), or one
representative device whose flows carry the load of the whole group (`symmetric`).

The library's collectives run as NCCL runs them (`simulator.parallel.nccl`, NCCL's tuning model
in src/graph/tuning.cc). A collective is run in one algorithm (ring, tree) and one protocol (LL,
LL128, Simple), a `Variant`: it pays the variant's base latency once (on its first flows), each
hop pays NCCL's hardware latency for the class of route it crosses (NVLink, PCIe, or network when
it leaves the node), plus whatever the route's links are slower than the ones NCCL's constants
were taken on, and its bytes use each channel as 1 / factor of them would (LL: half of every
8-byte word is a flag). The library's choice (`allreduce`; any collective without a forced
`protocol`) is the variant of least predicted time for that size, as in NCCL's
ncclTopoGetAlgoTime: predicted here from the symmetric analysis below (the time the collective
takes alone over the topology's links). Collectives that are not the library's (parameter-
server messages, explicit phases) pay the links' own latency per step at full bandwidth.

Full: each device runs its flows of one step as one task on its comm stream, after its
previous step and after the flows that brought it data in the meantime. A device takes part
in one collective at a time (its part of the next starts when its part of the last, the
data it received included, is over), as collectives on one NCCL stream do. In a pipelined
phase a pair that also ran in the step before pays no latency: its chunk follows on the
heels of the one before, so a pipeline pays each hop's latency once, not once per chunk.
A pipelined collective (a tree, `Collective.spans`) runs in full as one task per sending
device: each stream of chunks is one flow of all its chunks that starts when its first step
does in the lockstep schedule (the symmetric analysis below, over the whole group) and ends
no earlier than its last step there, sharing the links with whatever is in flight meanwhile.

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

import inspect
import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hardware_models.topology import Topology
from simulator.core.errors import UserError
from simulator.engine.plan import Flow, Plan, Transfer, comm_task, join_task
from simulator.parallel.collectives import Collective, Phase, collective
from simulator.parallel.nccl import PROTOCOLS, check_protocol, nccl

Done = dict[int, tuple[str, ...]]  # device -> tasks whose end means it has its result
Pair = tuple[int, int]
Unit = tuple[str, float]  # a route's class of hop (nvlink, pci, net) and its links' latency
Drain = tuple[str, float, float, float]  # (class, route latency, hops, busy s per byte a step)


@dataclass(frozen=True)
class Variant:
    """How one collective runs: NCCL's algorithm and protocol (None: the links' own latency
    per step, full bandwidth: not the library's), and whether it stays inside one node."""

    algorithm: str | None = None
    protocol: str | None = None
    one_node: bool = True

    @property
    def base_s(self) -> float:
        if self.algorithm is None or self.protocol is None:
            return 0.0
        return nccl().base_s(self.algorithm, self.protocol)

    @property
    def factor(self) -> float:
        if self.algorithm is None or self.protocol is None:
            return 1.0
        return nccl().factor(self.algorithm, self.protocol, self.one_node)

    def hop_s(self, unit: Unit) -> float:
        """One hop's latency over a route of this class and link latency."""
        klass, route_latency_s = unit
        if self.algorithm is None or self.protocol is None:
            return route_latency_s
        return nccl().hop_s(klass, self.algorithm, self.protocol, route_latency_s)


LINKS_OWN = Variant()


@dataclass(frozen=True)
class _PhaseLoad:
    """One phase of a collective at 1 byte: routes, bytes per channel, who could gate it."""

    phase: Phase
    end: int  # 0: flows belong to their sender, 1: to their receiver (pulls)
    routes: dict[Pair, tuple[str, ...]]
    hops: dict[Pair, float]  # how many hop latencies each pair pays over the phase's steps
    units: dict[Pair, Unit]
    total: dict[str, float]
    drains: dict[Drain, int]  # (class, route latency, hops, busy) -> first device

    def time_s(self, key: Drain, size_bytes: float, variant: Variant) -> float:
        """A device's drain time with every channel carrying the whole phase."""
        klass, route_latency_s, hops, busy = key
        return (hops * variant.hop_s((klass, route_latency_s))
                + size_bytes * busy * self.phase.steps / variant.factor)

    def gate_s(self, size_bytes: float, variant: Variant) -> float:
        return max(self.time_s(key, size_bytes, variant) for key in self.drains)


@dataclass
class CommPlanner:
    """Adds collectives to `plan`; `plan_index` maps topology devices to plan devices."""

    plan: Plan
    topo: Topology
    plan_index: dict[int, int]
    symmetric: bool = False
    launch_s: float = 0.0
    _loads: dict[Any, list[_PhaseLoad]] = field(default_factory=dict)
    _choices: dict[Any, tuple[str, Variant]] = field(default_factory=dict)
    _busy: Done = field(default_factory=dict)  # full: what ends each device's last collective
    _routes: dict[Pair, tuple[tuple[str, ...], Unit]] = field(default_factory=dict)
    _speeds: dict[str, float] = field(default_factory=dict)
    _hops_of: dict[str, tuple[str | None, float]] = field(default_factory=dict)
    _parts: dict[tuple[Variant, int, int], tuple[tuple[tuple[str, float], ...], float]] = field(
        default_factory=dict)

    def add(self, name: str, kind: str, group: list[int], size_bytes: float, after: Done,
            layer: str = "comm", **options: Any) -> Done:
        """Append collective `kind` of `size_bytes` over `group`; returns what ends it.
        `protocol` (LL, LL128, Simple) forces the library's protocol; other options go to the
        collective's phases (`chunk_bytes` of the tree, `servers` of a parameter server)."""
        if len(group) < 2 or size_bytes <= 0:
            return {d: after.get(d, ()) for d in group}
        protocol = check_protocol(options.pop("protocol", None))
        run, variant = self.choose(kind, group, size_bytes, protocol, **options)
        spec = collective.get(run)
        options = _accepted(spec, options)
        if self.symmetric:
            rep = self._rep(group)
            loads, at = self._shaped(run, spec, group, rep, size_bytes, options)
            return self._symmetric(name, loads, rep, size_bytes / at, after, layer, variant)
        if spec.spans is not None:  # a pipeline: one flow per stream of chunks
            loads, at = self._shaped(run, spec, group, self._rep(group), size_bytes, options)
            gates = [load.gate_s(size_bytes / at, variant) for load in loads]
            spans, step_bytes = spec.spans(group, self.topo, size_bytes, **options)
            return self._full_spans(name, spans, step_bytes, gates, after, layer, variant)
        phases = spec.phases(group, self.topo, size_bytes, **options)
        return self._full(name, phases, after, layer, variant)

    def choose(self, kind: str, group: list[int], size_bytes: float, protocol: str | None = None,
               **options: Any) -> tuple[str, Variant]:
        """The collective and variant the library runs `kind` of `size_bytes` over `group` in:
        the forced protocol, or the one of least predicted time (for `allreduce` also the
        algorithm), each predicted by the symmetric analysis (ties: ring, then LL first)."""
        spec = collective.get(kind)
        _check_options(kind, spec, options)
        if spec.algorithm is None and not spec.choices:
            return kind, LINKS_OWN
        key = (kind, tuple(group), size_bytes, protocol, repr(sorted(options.items())))
        if key not in self._choices:
            one_node = self._one_node(group)
            rep = self._rep(group)
            best: tuple[float, str, Variant] | None = None
            for run in spec.choices or (kind,):
                each = collective.get(run)
                loads, at = self._shaped(run, each, group, rep, size_bytes,
                                         _accepted(each, options))
                for proto in (protocol,) if protocol else PROTOCOLS:
                    variant = Variant(each.algorithm, proto, one_node)
                    time_s = predicted_s(loads, size_bytes / at, variant)
                    if best is None or time_s < best[0]:
                        best = (time_s, run, variant)
            assert best is not None
            self._choices[key] = (best[1], best[2])
        return self._choices[key]

    def add_phases(self, name: str, phases: list[Phase], group: list[int], after: Done,
                   layer: str = "comm") -> Done:
        """Append explicit phases (halo exchanges, point-to-point sends) among `group`; they
        pay the links' own latency per step (not the library's model)."""
        phases = [ph for ph in phases if ph.pairs]
        if not phases:
            return {d: after.get(d, ()) for d in group}
        if self.symmetric:
            rep = self._rep(group)
            launch = self.launch_s if _initiates(phases, rep) else 0.0
            return self._symmetric(name, self._analyse(phases, rep), rep, 1.0, after, layer,
                                   LINKS_OWN, launch)
        return self._full(name, phases, after, layer, LINKS_OWN)

    def _rep(self, group: list[int]) -> int:
        return next(d for d in group if d in self.plan_index)

    def _one_node(self, group: list[int]) -> bool:
        if self.topo.node_aware:
            return len({self.topo.node_of(d) for d in group}) == 1
        return all(self._route(a, b)[1][0] != "net" for a, b in itertools.pairwise(group))

    def _shaped(self, run: str, spec: Collective, group: list[int], rep: int, size_bytes: float,
                options: dict[str, Any]) -> tuple[list[_PhaseLoad], float]:
        """The analysed phases of `run` for `size_bytes` and the size they stand for (their
        bytes scale by size / that): linear collectives at 1 byte, chunked ones by their
        `Shape` (a tree's sizes share an analysis per chunk count), others at their size."""
        if spec.linear:
            return self._analysed(run, spec, group, rep, 1.0, options), 1.0
        if spec.shape is None:
            return self._analysed(run, spec, group, rep, size_bytes, options), size_bytes
        shape = spec.shape(group, self.topo, size_bytes, **options)
        loads = self._analysed(run, spec, group, rep, shape.at, {**options, **dict(shape.options)})
        if shape.stretch:
            loads = _stretched(loads, shape.stretch_step, shape.stretch)
        return loads, shape.scale_at

    def _analysed(self, run: str, spec: Collective, group: list[int], rep: int, at: float,
                  options: dict[str, Any]) -> list[_PhaseLoad]:
        key = (run, tuple(group), rep, at, repr(sorted(options.items())))
        if key not in self._loads:
            if spec.spans is not None:  # a pipeline: analysed span by span
                spans, size = spec.spans(group, self.topo, at, **options)
                self._loads[key] = self._analyse_spans(spans, size, rep)
            else:
                self._loads[key] = self._analyse(spec.phases(group, self.topo, at, **options),
                                                 rep)
        return self._loads[key]

    def _route(self, src: int, dst: int) -> tuple[tuple[str, ...], Unit]:
        """The channels from src to dst, their class of hop and their latency (cached); the
        latency is the topology's (half a link's latency a switched hop)."""
        if (src, dst) not in self._routes:
            route = self.topo.route(src, dst)
            hops = [self._hop(c) for c in route]
            self._routes[(src, dst)] = (route, (self._klass(src, dst, {t for t, _ in hops}),
                                                sum(half for _, half in hops)))
        return self._routes[(src, dst)]

    def _hop(self, channel: str) -> tuple[str | None, float]:
        """A channel's link: its class of hop (None: unknown) and half its latency."""
        if channel not in self._hops_of:
            link = self.topo.link(channel)
            self._hops_of[channel] = (getattr(link, "transport", None), link.latency_s / 2)
        return self._hops_of[channel]

    def _klass(self, src: int, dst: int, transports: set[str | None]) -> str:
        """NCCL's class of a hop: net when it leaves the node (or crosses a network link),
        nvlink when every link it crosses is NVLink, pci otherwise."""
        if "net" in transports or (self.topo.node_aware
                                   and self.topo.node_of(src) != self.topo.node_of(dst)):
            return "net"
        return "nvlink" if transports == {"nvlink"} else "pci"

    def _bandwidth(self, channel: str) -> float:
        if channel not in self._speeds:
            self._speeds[channel] = self.topo.bandwidth_bytes_per_s(channel)
        return self._speeds[channel]

    def _flow_parts(self, variant: Variant, src: int, dst: int
                    ) -> tuple[tuple[tuple[str, float], ...], float]:
        """A full plan's flow from src to dst in `variant`: its hops (each channel at the
        protocol's load) and one hop's latency (cached: thousands of flows share them)."""
        key = (variant, src, dst)
        if key not in self._parts:
            route, unit = self._route(src, dst)
            self._channels(route)
            load = 1.0 / variant.factor
            self._parts[key] = (tuple((c, load) for c in route), variant.hop_s(unit))
        return self._parts[key]

    def _channels(self, route: tuple[str, ...]) -> None:
        for channel in route:
            if channel not in self.plan.links:
                self.plan.links[channel] = self._bandwidth(channel)

    def _full(self, name: str, phases: list[Phase], after: Done, layer: str,
              variant: Variant) -> Done:
        """Every device's flows, one task per device per phase: its steps merged (bytes and
        hop latencies summed) and the phase gated by a join of its connected devices before
        and after. For a ring this is exact in closed form: a step needs the neighbour's step
        before, so after n - 1 steps every device has waited for the slowest start, and in
        lockstep the steps add up. So the tasks grow linearly with the devices (2(n - 1) steps
        of n flows would grow as n squared)."""
        # one collective at a time per device, as on an NCCL stream: a device's part starts
        # after its part in the previous one ended, receives included
        last: dict[int, tuple[str, ...]] = {}
        for d in set(after) | set(self._busy):
            last[d] = tuple(after.get(d, ())) + self._busy.get(d, ())
        started: set[int] = set()
        warm: set[Pair] = set()  # the pairs of the phase before
        for p, phase in enumerate(phases):
            info = {(s, d): self._route(s, d) for s, d, _ in phase.pairs}
            hops = self._hops(phase, info, warm)
            extra_s = variant.base_s if p == 0 else 0.0  # the library's latency, first flows
            for c, (members, pairs) in enumerate(_components(phase.pairs)):
                gate = f"{name}.p{p}.c{c}.start"
                self.plan.add(join_task(gate, self.plan_index[members[0]], tuple(dict.fromkeys(
                    t for d in members for t in last.get(d, ()))), layer))
                ends = self._full_phase(f"{name}.p{p}", phase, pairs, gate, hops, started,
                                        layer, variant, extra_s)
                end = f"{name}.p{p}.c{c}.end"
                self.plan.add(join_task(end, self.plan_index[members[0]], ends, layer))
                for d in members:
                    last[d] = (end,)
            warm = set(info)
        involved = {e for phase in phases for pair in phase.pairs for e in pair[:2]}
        for d in involved:
            self._busy[d] = last.get(d, ())
        return {d: last.get(d, ()) for d in set(last) | involved}

    def _full_spans(self, name: str, spans: list[Any], step_bytes: float, gates: list[float],
                    after: Done, layer: str, variant: Variant) -> Done:
        """A pipelined collective in full, one task per sending device after a join of the
        group: each stream of chunks (a span of steps from src to dst) is one flow of all its
        chunks, which starts when its first step does in the lockstep schedule (`gates`: the
        analysed phases' times, one per run of steps with the same flows) and pays its hop's
        latency once; the task also ends no earlier than its last step there (a delay: its
        last chunk comes through the pipeline). The bytes share the links with every flow in
        flight. One task per device per run of steps cost 2 x depth + 1 tasks and flows a
        device (55 over 1,024 GPUs)."""
        starts = _schedule(spans, gates, variant.base_s)
        flows: dict[int, list[Flow]] = {}
        floor_s: dict[int, float] = {}
        for first, stop, src, dst in spans:
            route, hop_s = self._flow_parts(variant, src, dst)
            flows.setdefault(src, []).append(
                Flow(route, step_bytes * (stop - first), starts[first] + hop_s, src, dst))
            floor_s[src] = max(floor_s.get(src, 0.0), starts[stop])
        for src, fl in flows.items():  # no earlier than its last chunk in lockstep: a delay
            fl.append(Flow((), 0.0, floor_s[src], src, src))
        members = sorted({e for _, _, src, dst in spans for e in (src, dst)})
        gate, end = f"{name}.start", f"{name}.end"
        self.plan.add(join_task(gate, self.plan_index[members[0]], tuple(dict.fromkeys(
            t for d in members for t in after.get(d, ()) + self._busy.get(d, ()))), layer))
        tasks = []
        for src in sorted(flows):
            tasks.append(f"{name}.d{src}")
            self.plan.add(comm_task(tasks[-1], self.plan_index[src], Transfer(tuple(flows[src])),
                                    (gate,), layer, self.launch_s))
        self.plan.add(join_task(end, self.plan_index[members[0]], tuple(tasks), layer))
        for d in members:
            self._busy[d] = (end,)
        return {d: (end,) for d in members}

    def _full_phase(self, name: str, phase: Phase, pairs: list[tuple[int, int, float]],
                    gate: str, hops: dict[Pair, float], started: set[int], layer: str,
                    variant: Variant, extra_s: float) -> tuple[str, ...]:
        """The merged tasks of one connected part (`pairs`) of a phase; returns their names."""
        flows: dict[int, list[Flow]] = {}
        by_src = phase.initiator == "src"
        steps = phase.steps
        for src, dst, size in pairs:
            route, hop_s = self._flow_parts(variant, src, dst)
            flows.setdefault(src if by_src else dst, []).append(
                Flow(route, size * steps, extra_s + hops[(src, dst)] * hop_s, src, dst))
        tasks = []
        for who, fl in flows.items():
            task = f"{name}.d{who}"
            launch = 0.0 if who in started else self.launch_s
            started.add(who)
            self.plan.add(comm_task(task, self.plan_index[who], Transfer(tuple(fl)), (gate,),
                                    layer, launch))
            tasks.append(task)
        return tuple(tasks)

    def _analyse(self, phases: list[Phase], rep: int) -> list[_PhaseLoad]:
        """Per phase (at 1 byte): the load on every channel and each device's drain time;
        kept: the pairs of the devices that could gate the phase and their channels' loads."""
        loads = []
        warm: set[Pair] = set()  # the pairs of the phase before
        for phase in phases:
            end = 0 if phase.initiator == "src" else 1
            info = {(s, d): self._route(s, d) for s, d, _ in phase.pairs}
            hops = self._hops(phase, info, warm)
            total: dict[str, float] = {}
            for src, dst, size in phase.pairs:
                for channel in info[(src, dst)][0]:
                    total[channel] = total.get(channel, 0.0) + size
            busy_s = {c: b / self._bandwidth(c) for c, b in total.items()}  # per byte
            drains: dict[Drain, int] = {}  # (class, latency, hops, seconds per byte) -> device
            for pair in [p for p in info if p[end] == rep] + list(info):  # rep's first
                route, unit = info[pair]
                busy = max(map(busy_s.__getitem__, route)) if route else 0.0
                drains.setdefault((*unit, hops[pair], busy), int(pair[end]))
            keep = set(drains.values())
            pairs = tuple(p for p in phase.pairs if p[end] in keep)
            loads.append(self._load(replace(phase, pairs=pairs), end, hops, total, drains))
            warm = set(info)
        return loads

    def _load(self, phase: Phase, end: int, hops: dict[Pair, float], total: dict[str, float],
              drains: dict[Drain, int]) -> _PhaseLoad:
        """A phase's analysis, reduced to the pairs of `phase` (those of the gating devices)."""
        routes = {(s, d): self._route(s, d)[0] for s, d, _ in phase.pairs}
        units = {pair: self._route(*pair)[1] for pair in routes}
        channels = {c for route in routes.values() for c in route}
        return _PhaseLoad(phase, end, routes, {p: hops[p] for p in routes}, units,
                          {c: total[c] for c in channels}, drains)

    def _analyse_spans(self, spans: list[Any], size: float, rep: int) -> list[_PhaseLoad]:
        """`_analyse(span_phases(spans, size), rep)` without building the phases, in arrays:
        a pair is in flight in the phases its spans cover and pays its hop's latency in those
        where one of its spans starts (a new stream of chunks); a channel's load in a phase is
        the flows in flight on it; a pair's drain time is its class of hop, its hops and the
        most loaded of its channels. A drain time's device is the representative where it has
        one, else the first device (in the spans' order) to have it."""
        cuts = np.array(sorted({t for first, stop, _, _ in spans for t in (first, stop)}))
        seen = list(dict.fromkeys((src, dst) for _, _, src, dst in spans))
        pairs = [p for p in seen if p[0] == rep] + [p for p in seen if p[0] != rep]  # rep's first
        index = {pair: i for i, pair in enumerate(pairs)}
        info = [self._route(*pair) for pair in pairs]
        channels = list(dict.fromkeys(c for route, _ in info for c in route))
        where = {c: i for i, c in enumerate(channels)}
        n_pairs, n_phases = len(pairs), len(cuts) - 1
        of_span = np.array([index[(src, dst)] for _, _, src, dst in spans])
        first = np.searchsorted(cuts, [span[0] for span in spans])
        stop = np.searchsorted(cuts, [span[1] for span in spans])
        flows = np.zeros((n_pairs, n_phases + 1))  # flows of each pair in flight, per phase
        np.add.at(flows, (of_span, first), 1.0)
        np.add.at(flows, (of_span, stop), -1.0)
        flows = np.cumsum(flows, axis=1)[:, :n_phases]
        starting = np.zeros((n_pairs, n_phases + 1), dtype=bool)
        starting[of_span, first] = True
        width = max((len(route) for route, _ in info), default=0)
        crossed = np.full((n_pairs, max(width, 1)), -1)  # each pair's channels, -1: none
        for i, (route, _) in enumerate(info):
            crossed[i, :len(route)] = [where[c] for c in route]
        load = np.zeros((len(channels) + 1, n_phases))  # flows per channel (last row: none)
        for k in range(width):
            used = crossed[:, k] >= 0
            np.add.at(load, crossed[used, k], flows[used])
        speed = np.array([self._bandwidth(c) for c in channels] + [1.0])
        busy = np.zeros((n_pairs, n_phases))
        for k in range(width):
            column = np.where(crossed[:, k] >= 0, crossed[:, k], len(channels))
            busy = np.maximum(busy, load[column] * size / speed[column][:, None])
        units = sorted({unit for _, unit in info})
        unit_of = np.array([units.index(unit) for _, unit in info], dtype=float)
        # pairs alike in every phase (a tree's many equal chains) are one class, analysed once
        signature = np.ascontiguousarray(
            np.hstack([unit_of[:, None], flows, starting[:, :n_phases], busy]))
        raw, row = signature.tobytes(), signature.shape[1] * signature.itemsize
        first_of: dict[bytes, int] = {}
        for j in range(n_pairs):
            first_of.setdefault(raw[j * row:(j + 1) * row], j)
        classes = np.array(sorted(first_of.values()), dtype=int)  # by first pair: rep's first
        senders: dict[int, list[int]] = {}
        for j, (src, _) in enumerate(pairs):
            senders.setdefault(src, []).append(j)
        loads = []
        for i in range(n_phases):
            live = classes[flows[classes, i] > 0]
            if not len(live):
                continue
            drains: dict[Drain, int] = {}
            for j in live:  # in the pairs' order: the representative's first
                klass, latency_s = units[int(unit_of[j])]
                key = (klass, latency_s, 1.0 if starting[j, i] else 0.0, float(busy[j, i]))
                drains.setdefault(key, pairs[j][0])
            mine = [j for dev in dict.fromkeys(drains.values()) for j in senders[dev]
                    if flows[j, i] > 0]
            phase_pairs = tuple((*pairs[j], size) for j in mine for _ in range(int(flows[j, i])))
            hop_count = {pairs[j]: 1.0 if starting[j, i] else 0.0 for j in mine}
            total = {c: float(load[where[c], i]) * size for j in mine for c in info[j][0]}
            loads.append(self._load(Phase(phase_pairs, int(cuts[i + 1] - cuts[i]),
                                          pipelined=True), 0, hop_count, total, drains))
        return loads

    @staticmethod
    def _hops(phase: Phase, routes: dict[Pair, Any], warm: set[Pair]) -> dict[Pair, float]:
        """How many hop latencies each pair pays over the phase: once a step, or in a
        pipelined phase once at its first step, and not at all for a pair that ran in the
        phase before (unless its stream of chunks starts here: `Phase.fresh`)."""
        if not phase.pipelined:
            return dict.fromkeys(routes, float(phase.steps))
        if phase.fresh is not None:  # the pairs whose stream starts here
            return {pair: 1.0 if pair in phase.fresh else 0.0 for pair in routes}
        return {pair: 0.0 if pair in warm else 1.0 for pair in routes}

    def _flows(self, load: _PhaseLoad, rep: int, size_bytes: float, variant: Variant,
               extra_s: float) -> list[Flow]:
        """The flows of the device that gates the phase: the one whose flow takes longest with
        every channel carrying the whole phase's load (the representative on ties)."""
        steps = load.phase.steps
        times = {key: load.time_s(key, size_bytes, variant) for key in load.drains}
        best = max(times.values())
        mine = [who for key, who in load.drains.items() if times[key] == best]
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
            hops = tuple((c, load.total[c] / own[c] / variant.factor) for c in route)
            latency = extra_s + load.hops[(src, dst)] * variant.hop_s(load.units[(src, dst)])
            flows.append(Flow(hops, size * size_bytes * steps, latency, src, dst))
        return flows

    def _symmetric(self, name: str, loads: list[_PhaseLoad], rep: int, size_bytes: float,
                   after: Done, layer: str, variant: Variant,
                   launch_s: float | None = None) -> Done:
        """The representative's tasks; it pays one launch, as in the full plan, unless it
        starts no flow of its own there (`launch_s` 0: it only receives)."""
        first_launch_s = self.launch_s if launch_s is None else launch_s
        preds = tuple(after.get(rep, ()))
        for p, load in enumerate(loads):
            extra_s = variant.base_s if p == 0 else 0.0
            merged = tuple(self._flows(load, rep, size_bytes, variant, extra_s))
            task = f"{name}.p{p}.d{rep}"  # the flows may be another device's (the gating one)
            launch = first_launch_s if p == 0 else 0.0
            self.plan.add(comm_task(task, self.plan_index[rep], Transfer(merged), preds, layer,
                                    launch))
            preds = (task,)
        return {rep: preds}


def _stretched(loads: list[_PhaseLoad], step: int, extra: int) -> list[_PhaseLoad]:
    """`loads` with the phase that starts at `step` longer by `extra` steps."""
    start = 0
    for i, load in enumerate(loads):
        if start == step:
            longer = replace(load, phase=replace(load.phase, steps=load.phase.steps + extra))
            return loads[:i] + [longer] + loads[i + 1:]
        start += load.phase.steps
    raise AssertionError(f"no phase starts at step {step}")


def predicted_s(loads: list[_PhaseLoad], size_bytes: float, variant: Variant) -> float:
    """The time the analysed collective takes alone in `variant` (its phases one after the
    other, each gated by its slowest device): what the library's choice minimises."""
    return variant.base_s + sum(load.gate_s(size_bytes, variant) for load in loads)


def _parameters(spec: Collective) -> list[str]:
    """The options a collective's phases take (after group, topology and size)."""
    return list(inspect.signature(spec.phases).parameters)[3:]


def _accepted(spec: Collective, options: dict[str, Any]) -> dict[str, Any]:
    """The options `spec`'s phases take (a choice's other candidates may take the rest)."""
    params = _parameters(spec)
    return {k: v for k, v in options.items() if k in params}


def _check_options(kind: str, spec: Collective, options: dict[str, Any]) -> None:
    """An option that the collective (or none of the collectives it chooses among) takes is
    an error, as an unknown strategy option is."""
    valid = set(_parameters(spec))
    for run in spec.choices:
        valid |= set(_parameters(collective.get(run)))
    unknown = sorted(set(options) - valid)
    if unknown:
        raise UserError(f"options: unknown key '{unknown[0]}' for collective {kind}; "
                        f"valid keys: {', '.join(sorted(valid | {'protocol'}))}")


def _schedule(spans: list[Any], gates: list[float], base_s: float) -> dict[int, float]:
    """When each step that starts a run of the spans' steps begins in the lockstep schedule:
    the library's base latency plus the times of the runs before it (runs with no flow in
    flight take none; `gates` has one time per run with flows)."""
    cuts = sorted({t for first, stop, _, _ in spans for t in (first, stop)})
    index = {cut: i for i, cut in enumerate(cuts)}
    change = [0] * len(cuts)
    for first, stop, _, _ in spans:
        change[index[first]] += 1
        change[index[stop]] -= 1
    starts, at, in_flight, times = {}, base_s, 0, iter(gates)
    for i, cut in enumerate(cuts):
        starts[cut] = at
        in_flight += change[i]
        if in_flight:
            at += next(times)
    if next(times, None) is not None:
        raise AssertionError("the analysed phases do not match the spans' runs of steps")
    return starts


def _components(pairs: tuple[tuple[int, int, float], ...]
                ) -> list[tuple[list[int], list[tuple[int, int, float]]]]:
    """The devices of `pairs` by connected part (flows link their ends), each part's devices
    sorted and its pairs in their order, the parts in order of their smallest device."""
    parent: dict[int, int] = {}

    def root(d: int) -> int:
        while parent.setdefault(d, d) != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    for src, dst, _ in pairs:
        a, b = root(src), root(dst)
        if a != b:
            parent[max(a, b)] = min(a, b)
    parts: dict[int, tuple[list[int], list[tuple[int, int, float]]]] = {}
    for d in sorted(parent):
        parts.setdefault(root(d), ([], []))[0].append(d)
    for pair in pairs:
        parts[root(pair[0])][1].append(pair)
    return list(parts.values())


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
