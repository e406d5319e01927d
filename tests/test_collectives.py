"""Collectives over a topology: bytes conserved, alpha-beta shape (NCCL's latencies, the
protocol's bandwidth), hierarchy, contention, and the symmetric shortcut equal to the full
simulation."""

from __future__ import annotations

import pytest
from cluster_helpers import cluster

from hardware_models.ideal import IdealDevice
from simulator.engine.loop import simulate
from simulator.engine.plan import Plan
from simulator.parallel.collectives import collective
from simulator.parallel.comm_plan import CommPlanner, collective_plan
from simulator.parallel.nccl import nccl

S = 256e6
US = 1e-6


def _time(kind: str, topo, size: float, symmetric: bool = False, **options) -> float:
    return simulate(collective_plan(kind, topo, size, IdealDevice(), symmetric, **options)).end_s


def _chosen(kind: str, topo, size: float) -> str:
    planner = CommPlanner(Plan(devices=[IdealDevice()] * topo.size), topo,
                          {d: d for d in range(topo.size)})
    return planner.choose(kind, list(range(topo.size)), size)[0]


def _sent_and_received(kind: str, topo, size: float) -> tuple[dict[int, float], dict[int, float]]:
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    run = _chosen(kind, topo, size)  # the library's choice for `allreduce`
    for phase in collective.get(run).phases(list(range(topo.size)), topo, size):
        for src, dst, b in phase.pairs:
            sent[src] = sent.get(src, 0.0) + b * phase.steps
            received[dst] = received.get(dst, 0.0) + b * phase.steps
    return sent, received


@pytest.mark.parametrize("nodes, per_node", [(1, 2), (1, 8), (4, 1), (2, 4), (4, 8)])
def test_ring_allreduce_sends_2_n_minus_1_over_n_per_rank(nodes, per_node):
    topo = cluster(nodes, per_node)
    n = topo.size
    sent, received = _sent_and_received("allreduce_ring", topo, S)
    assert set(sent) == set(range(n))
    for rank in range(n):
        assert sent[rank] == pytest.approx(2 * (n - 1) / n * S)
        assert received[rank] == pytest.approx(sent[rank])


@pytest.mark.parametrize("kind", ["allreduce", "allreduce_ring", "allreduce_tree", "reducescatter",
                                  "allgather", "broadcast", "p2p", "ps_push", "ps_pull"])
def test_bytes_sent_equal_bytes_received_in_the_engine(kind):
    topo = cluster(2, 4)
    trace = simulate(collective_plan(kind, topo, S, IdealDevice(), False))
    up = sum(r.size_bytes for r in trace.links if r.channel.startswith("d"))
    down = sum(r.size_bytes for r in trace.links if r.channel.split(">")[1].startswith("d"))
    sent, _ = _sent_and_received(kind, topo, S)
    assert up == pytest.approx(down) and up == pytest.approx(sum(sent.values()))


@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("protocol", ["LL", "LL128", "Simple"])
def test_allreduce_time_follows_alpha_beta(n, protocol):
    # NCCL's ring: base + 2(n-1) hops, each NCCL's PCI latency plus what the route's links are
    # slower than the 1 us NCCL's constants include; the protocol's share of the bandwidth
    bandwidth, latency = 50e9, 3e-6
    topo = cluster(1, n, intra_bytes_per_s=bandwidth, latency_s=latency)
    big, bigger = 1e9, 2e9
    t1 = _time("allreduce_ring", topo, big, protocol=protocol)
    t2 = _time("allreduce_ring", topo, bigger, protocol=protocol)
    slope = (t2 - t1) / (bigger - big)
    model = nccl()
    factor = model.factor("ring", protocol, one_node=True)
    assert slope == pytest.approx(2 * (n - 1) / (n * bandwidth * factor), rel=1e-9)
    hop = model.hop_s("pci", "ring", protocol, latency)
    assert hop == pytest.approx(model.hop_latency_us.pci.ring[protocol] * US + latency - US)
    alpha = model.base_s("ring", protocol) + 2 * (n - 1) * hop
    assert t1 - slope * big == pytest.approx(alpha, rel=1e-6)


def test_tree_beats_ring_on_small_messages_and_loses_on_large_ones():
    topo = cluster(16, 1)  # one device a node: the double binary tree spans every rank
    assert _time("allreduce_tree", topo, 1e3) < _time("allreduce_ring", topo, 1e3)
    assert _time("allreduce_tree", topo, 1e9) > _time("allreduce_ring", topo, 1e9)
    assert _time("allreduce", topo, 1e3) == _time("allreduce_tree", topo, 1e3)  # the choice
    assert _time("allreduce", topo, 1e9) == _time("allreduce_ring", topo, 1e9)


def test_hierarchy_fast_inside_a_node_slow_between_nodes():
    inside = _time("allreduce", cluster(1, 8), S)
    across = _time("allreduce", cluster(2, 4), S)
    assert across > 3 * inside


def test_devices_of_a_node_share_its_nic():
    # the inter-node phase: 4 rails of S/8 each through one NIC of 10 GB/s
    topo = cluster(2, 4, intra_bytes_per_s=1e15, latency_s=1e-12)
    model = nccl()
    latency = (model.base_s("ring", "Simple") + 2 * 3 * model.hop_s("pci", "ring", "Simple", 0)
               + 2 * 1 * model.hop_s("net", "ring", "Simple", 0))
    wire = 2 * (2 - 1) * 4 * (S / 8) / 10e9
    assert _time("allreduce_ring", topo, S, protocol="Simple") == pytest.approx(latency + wire,
                                                                                 rel=1e-4)


def test_more_bandwidth_never_slows_a_collective():
    for kind in ("allreduce", "allreduce_ring", "allreduce_tree", "allgather", "ps_push"):
        slow = _time(kind, cluster(2, 4, 100e9, 10e9), S) * (1 + 1e-12)  # rounding only
        assert _time(kind, cluster(2, 4, 200e9, 10e9), S) <= slow
        assert _time(kind, cluster(2, 4, 100e9, 20e9), S) <= slow


@pytest.mark.parametrize("nodes, per_node",
                         [(1, 2), (1, 4), (1, 8), (2, 2), (2, 4), (4, 2), (3, 1)])
@pytest.mark.parametrize("kind", ["allreduce", "allreduce_ring", "allreduce_tree", "reducescatter",
                                  "allgather", "broadcast", "p2p", "ps_push", "ps_pull"])
def test_symmetric_shortcut_equals_full_simulation(kind, nodes, per_node):
    topo = cluster(nodes, per_node)
    symmetric, full = _time(kind, topo, S, symmetric=True), _time(kind, topo, S)
    n = topo.size
    if kind == "broadcast" and n & (n - 1):
        # a binomial tree over a non-power-of-two group is not symmetric: the shortcut runs
        # it round by round, where the full run lets an idle rank send early; they may
        # differ by at most one latency per round
        rounds = (n - 1).bit_length()
        assert abs(symmetric - full) <= rounds * 1e-6
    elif _chosen(kind, topo, S) == "allreduce_tree":
        # the shortcut runs the pipeline's steps in lockstep; the full run's streams of
        # chunks start on that schedule and end no earlier, but share the links as they go;
        # the two differ by at most a few of the tree's hop latencies (4 us, NCCL's Simple)
        assert symmetric == pytest.approx(full, rel=1e-3, abs=4 * 4e-6)
    else:
        assert symmetric == pytest.approx(full, rel=1e-9)


def test_parameter_server_shards_split_the_load():
    topo = cluster(6, 1)
    one = _time("ps_push", topo, S, servers=[5])
    two = _time("ps_push", topo, S, servers=[4, 5])
    assert two == pytest.approx(one / 2, rel=1e-3)


def test_bus_bandwidth_factors_follow_nccl_tests():
    assert collective.get("allreduce").bus_factor(8) == pytest.approx(2 * 7 / 8)
    assert collective.get("allgather").bus_factor(8) == pytest.approx(7 / 8)
    assert collective.get("broadcast").bus_factor(8) == 1.0
