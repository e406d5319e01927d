"""Invariants as property tests (hypothesis), over random op DAGs, device rates, cluster shapes,
message sizes and stragglers. Examples per property: the active hypothesis profile's (see
conftest.py: 1,000 by default, as CI runs them; `--hypothesis-profile=thorough` for 10,000).

Why monotonicity holds without tolerance here: a plan fixes every stream's order, and a task
starts at the latest of its stream's previous end, its launch and its inputs' ends, so every
time is a max-plus expression of the durations, non-decreasing in each (no list scheduling
that could reorder work: Graham's anomalies need a dispatcher that picks the next task).
Shared links are the exception in general (max-min fair rates are not monotone in one
channel's capacity), so for links the property tested is scaling them all together, which
scales every fair rate alike.
"""

from __future__ import annotations

import networkx as nx
import pytest
from cluster_helpers import cluster
from graph_helpers import random_graphs
from hypothesis import given
from hypothesis import strategies as st

from hardware_models.ideal import IdealDevice
from hardware_models.slowed import slowed
from simulator.engine.loop import simulate
from simulator.engine.plan import single_device_plan
from simulator.parallel.comm_plan import collective_plan
from simulator.results.metrics import breakdown
from workloads.ops import OpGraph

EPS = 1e-9


rates = st.tuples(st.floats(1e10, 1e13), st.floats(1e9, 1e12))


def _run(graph: OpGraph, flops_per_s: float, bytes_per_s: float, factor: float = 1.0):
    device = slowed(IdealDevice(flops_per_s, bytes_per_s), factor)
    plan = single_device_plan(graph, device)
    return plan, simulate(plan)


@given(random_graphs(), rates)
def test_bounds_precedence_and_well_formed_traces(graph, rate):
    plan, trace = _run(graph, *rate)
    dur = {t.name: t.cost.duration_s for t in plan.tasks}
    dag = graph.to_networkx()
    for a, b in dag.edges:
        dag.edges[a, b]["w"] = dur[a]
    critical = sum(dur[n] for n in nx.dag_longest_path(dag, weight="w"))
    serial = sum(dur.values())
    per_stream: dict[str, float] = {}
    for task in plan.tasks:
        per_stream[task.stream] = per_stream.get(task.stream, 0.0) + dur[task.name]
    eps = EPS * max(serial, 1e-12)
    assert trace.end_s >= critical - eps  # lower bound: the critical path
    assert trace.end_s >= max(per_stream.values()) - eps  # lower bound: a stream's work
    assert trace.end_s >= sum(op.flops for op in graph.ops()) / rate[0] - eps  # work / peak
    assert trace.end_s <= serial + eps  # upper bound: everything one after the other
    assert sorted(s.name for s in trace.spans) == sorted(dur)  # each op exactly once
    end = {s.name: s.end_s for s in trace.spans}
    for s in trace.spans:
        assert s.launched_s <= s.start_s + eps and s.start_s <= s.end_s
        for p in graph.predecessors(s.name):
            assert s.start_s >= end[p] - eps, f"{s.name} started before {p} ended"
    for stream in per_stream:  # a stream runs one op at a time
        spans = sorted((s for s in trace.spans if s.stream == stream),
                       key=lambda s: (s.start_s, s.end_s))
        for a, b in zip(spans, spans[1:], strict=False):
            assert b.start_s >= a.end_s - eps
    busy = sum(s.duration_s for s in trace.spans if s.stream == "compute")
    assert 0.0 <= busy <= trace.end_s * (1 + EPS) + 1e-15  # utilisation within [0, 1]
    parts = breakdown(trace)
    assert sum(parts.values()) == pytest.approx(trace.end_s, rel=1e-9, abs=1e-15)
    assert min(parts.values()) >= 0.0


@given(random_graphs(), rates, st.floats(1.0, 4.0), st.floats(1.0, 4.0))
def test_faster_devices_and_fewer_slowdowns_are_never_slower(graph, rate, k, slowdown):
    base = _run(graph, *rate)[1].end_s
    assert _run(graph, rate[0] * k, rate[1])[1].end_s <= base * (1 + EPS) + 1e-15
    assert _run(graph, rate[0], rate[1] * k)[1].end_s <= base * (1 + EPS) + 1e-15
    assert _run(graph, *rate, factor=slowdown)[1].end_s >= base * (1 - EPS)


@given(random_graphs(), rates, st.floats(0.01, 100.0))
def test_units_scale_out(graph, rate, k):
    # every rate k times higher: every time k times shorter (no constant hides in the engine)
    base = _run(graph, *rate)[1].end_s
    assert _run(graph, rate[0] * k, rate[1] * k)[1].end_s == pytest.approx(base / k, rel=1e-9,
                                                                           abs=1e-18)


@given(random_graphs(), rates)
def test_same_inputs_give_the_same_trace(graph, rate):
    assert _run(graph, *rate)[1].spans == _run(graph, *rate)[1].spans


shapes = st.tuples(st.integers(1, 6), st.integers(1, 8)).filter(lambda s: s[0] * s[1] >= 2)
sizes = st.floats(1.0, 1e9)
links = st.tuples(st.floats(1e9, 1e12), st.floats(1e8, 1e11), st.floats(1e-9, 1e-5))


def _collective(kind: str, shape, size: float, link, symmetric: bool, scale: float = 1.0):
    topo = cluster(*shape, link[0] * scale, link[1] * scale, link[2] / scale)
    plan = collective_plan(kind, topo, size / 1.0, IdealDevice(), symmetric)
    return plan, simulate(plan)


@pytest.mark.slow
@given(shapes, sizes, links)
def test_ring_full_simulation_equals_the_symmetric_shortcut(shape, size, link):
    full = _collective("allreduce_ring", shape, size, link, False)[1].end_s
    sym = _collective("allreduce_ring", shape, size, link, True)[1].end_s
    assert full == pytest.approx(sym, rel=1e-9, abs=1e-15)


@pytest.mark.slow
@given(st.sampled_from(["allreduce_ring", "allreduce_tree", "allreduce", "allgather",
                        "reducescatter", "broadcast"]), shapes, sizes, links,
       st.floats(1.0, 8.0))
def test_collectives_conserve_bytes_and_faster_links_are_never_slower(kind, shape, size,
                                                                       link, k):
    plan, trace = _collective(kind, shape, size, link, False)
    sent = sum(f.size_bytes * len(f.hops) for t in plan.tasks if t.transfer is not None
               for f in t.transfer.flows if f.size_bytes > 0)
    moved = sum(r.size_bytes for r in trace.links)
    assert moved == pytest.approx(sent, rel=1e-9)  # every byte of every flow crossed each hop
    if kind == "allreduce_ring":  # flat or hierarchical, each device sends 2(n - 1)/n S
        n = shape[0] * shape[1]
        out: dict[int, float] = {}
        for t in plan.tasks:
            for f in t.transfer.flows if t.transfer is not None else ():
                out[f.src] = out.get(f.src, 0.0) + f.size_bytes
        assert sorted(out) == list(range(n))
        for d, b in out.items():
            assert b == pytest.approx(2 * (n - 1) / n * size, rel=1e-9), d
    faster = _collective(kind, shape, size, link, False, scale=k)[1].end_s
    assert faster <= trace.end_s * (1 + EPS) + 1e-15


@st.composite
def faulted_clusters(draw: st.DrawFn) -> tuple:
    """A built cluster (1-3 nodes of 1-4 devices, 1-2 NICs, NVLink or PCIe inside) and up to
    three of its cables degraded or failed. The link inside a node is at least as fast as
    the devices' own links to the NICs (NVLink over PCIe, or one PCIe switch), as on real
    boards: the routes by formula are then the paths of least time of the healthy cluster."""
    from cluster_helpers import link

    from hardware_models.topology import build_cluster

    nodes, per_node = draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 4]))
    nics = draw(st.sampled_from([n for n in (1, 2) if per_node % n == 0]))
    intra = link("intra", draw(st.floats(60e9, 400e9)))
    host = draw(st.sampled_from([intra, link("host", draw(st.floats(10e9, 60e9)))]))
    topo = build_cluster(nodes, per_node, intra, link("inter", draw(st.floats(5e9, 50e9))),
                         host, nics_per_node=nics)
    cables = sorted((u, v) for u, v, data in topo.graph.edges(data=True)
                    if data["link"] is not None)
    chosen = draw(st.lists(st.sampled_from(cables), max_size=3, unique=True))
    fractions = [draw(st.sampled_from([0.0, 0.05, 0.5, 0.99])) for _ in chosen]
    return topo, [(u, v, f) for (u, v), f in zip(chosen, fractions, strict=True)]


@given(faulted_clusters())
def test_routes_round_link_faults_are_paths_of_least_time(case):
    """Every route of a cluster with degraded or failed cables costs what the least-time path
    of what is left costs (the routes by formula kept where no fault lies on them)."""
    from hardware_models.topology import with_link_faults
    from simulator.core.errors import UserError

    topo, faults = case
    try:
        faulted = with_link_faults(topo, faults)
    except UserError as err:  # the faults cut a device off: said so, in one line
        assert "is cut off from" in str(err) and "\n" not in str(err)
        return

    def weight(u: str, v: str, data: dict) -> float:
        return 0.0 if data["link"] is None else 1.0 / data["link"].bandwidth_bytes_per_s

    for a in range(faulted.size):
        lengths = nx.single_source_dijkstra_path_length(faulted.graph, faulted.devices[a],
                                                        weight=weight)
        for b in range(faulted.size):
            cost = sum(1.0 / faulted.bandwidth_bytes_per_s(c) for c in faulted.route(a, b))
            assert cost == pytest.approx(lengths[faulted.devices[b]], rel=1e-9, abs=1e-30)
