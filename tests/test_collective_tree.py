"""The pipelined double binary tree all-reduce (`allreduce_tree`): NCCL's trees, bytes each
rank sends, every rank getting the sum, the bandwidth term near the ring's on large messages,
log-depth latency on small ones (NCCL's tree latency model), the chunking, and `allreduce`
as the library's choice between the ring and the tree."""

from __future__ import annotations

import math

import pytest
from cluster_helpers import cluster, link

from hardware_models.ideal import IdealDevice
from hardware_models.topology import build_cluster
from simulator.core.errors import UserError
from simulator.engine.loop import simulate
from simulator.engine.plan import Plan
from simulator.parallel.collectives import (
    TREE_MAX_CHUNKS,
    Parents,
    channel_trees,
    collective,
    dtree_parents,
    pipeline_spans,
    span_phases,
    tree_chains,
    tree_chunks,
    tree_heights,
    tree_spans,
)
from simulator.parallel.comm_plan import CommPlanner, Variant, collective_plan, predicted_s
from simulator.parallel.nccl import nccl

S = 256e6
# cluster(): 1 us links, routes as slow as those NCCL's constants include (1 us inside a
# node, 2 us between): a hop costs NCCL's latency, PCI inside a node, network between
INTRA_HOP_S = nccl().hop_s("pci", "tree", "LL", 1e-6)
INTER_HOP_S = nccl().hop_s("net", "tree", "LL", 2e-6)


def _time(kind: str, topo, size: float, symmetric: bool = False, **options) -> float:
    return simulate(collective_plan(kind, topo, size, IdealDevice(), symmetric, **options)).end_s


def _trees(topo) -> list[Parents]:
    group = list(range(topo.size))
    return [tree for chains in tree_chains(group, topo) for tree in channel_trees(chains)]


def _bytes_by_pair(topo, size: float) -> dict[tuple[int, int], float]:
    moved: dict[tuple[int, int], float] = {}
    for phase in collective.get("allreduce_tree").phases(list(range(topo.size)), topo, size):
        for src, dst, b in phase.pairs:
            moved[(src, dst)] = moved.get((src, dst), 0.0) + b * phase.steps
    return moved


def _children(parents: Parents) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {dev: [] for dev in parents}
    for dev, up in parents.items():
        if up >= 0:
            children[up].append(dev)
    return children


def test_ncclgetbtree_and_its_mirror_and_shift():
    # the pictures of NCCL's src/graph/trees.cc
    first, mirror = dtree_parents(12)
    assert first[8] == 0 and first[4] == first[10] == 8 and first[11] == 10
    assert mirror.index(-1) == 11 and mirror[3] == 11 and mirror[1] == mirror[7] == 3
    first, shifted = dtree_parents(13)
    assert first[12] == 8 and first[10] == 12 and first[9] == first[11] == 10
    assert shifted.index(-1) == 1 and shifted[9] == 1 and shifted[5] == shifted[0] == 9


@pytest.mark.parametrize("n", range(1, 40))
def test_double_binary_tree_each_rank_interior_in_at_most_one_tree(n):
    trees = dtree_parents(n)
    for parents in trees:
        assert parents.count(-1) == 1
        for rank in range(n):  # every rank reaches the root: a spanning tree
            seen = set()
            while rank >= 0:
                assert rank not in seen
                seen.add(rank)
                rank = parents[rank]
        assert max((parents.count(r) for r in range(n)), default=0) <= 2  # binary
    interior = [{p for p in parents if p >= 0} for parents in trees]
    both = interior[0] & interior[1]
    assert both == (set() if n % 2 == 0 or n == 1 else {0})  # odd n: rank 0 (NCCL's shift)


@pytest.mark.parametrize("nodes, per_node", [(1, 8), (2, 4), (3, 2), (4, 1), (5, 1), (8, 2)])
def test_each_tree_edge_carries_its_share_each_way(nodes, per_node):
    topo = cluster(nodes, per_node)
    trees = _trees(topo)
    share = S / len(trees)
    expected: dict[tuple[int, int], float] = {}
    for parents in trees:
        for dev, up in parents.items():
            if up >= 0:  # reduce: the child's partial sum up; broadcast: the total down
                expected[(dev, up)] = expected.get((dev, up), 0.0) + share
                expected[(up, dev)] = expected.get((up, dev), 0.0) + share
    moved = _bytes_by_pair(topo, S)
    assert set(moved) == set(expected)
    for pair, size in expected.items():
        assert moved[pair] == pytest.approx(size, rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 8, 13, 16])
def test_no_rank_sends_or_receives_more_than_2s_over_one_device_per_node(n):
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    for (src, dst), size in _bytes_by_pair(cluster(n, 1), S).items():
        sent[src] = sent.get(src, 0.0) + size
        received[dst] = received.get(dst, 0.0) + size
    assert set(sent) == set(received) == set(range(n))
    assert max(sent.values()) <= 2 * S * (1 + 1e-12)
    assert max(received.values()) <= 2 * S * (1 + 1e-12)


@pytest.mark.parametrize("nodes, per_node", [(1, 8), (2, 8), (5, 1), (4, 3)])
@pytest.mark.parametrize("chunks", [1, 3, 40])
def test_every_rank_gets_every_chunk_of_the_sum(nodes, per_node, chunks):
    # chunk c of an edge goes at step first + c: it suffices to order the first steps
    for parents in _trees(cluster(nodes, per_node)):
        up_step, down_step = {}, {}
        for first, end, src, dst in pipeline_spans(parents, chunks):
            assert end - first == chunks
            if parents[src] == dst:
                up_step[src] = first
            else:
                assert parents[dst] == src
                down_step[dst] = first
        root = next(d for d, up in parents.items() if up < 0)
        children = _children(parents)
        assert set(down_step) == set(parents) - {root}  # every other rank receives the sum
        summed = max((up_step[c] for c in children[root]), default=-1)
        for dev, up in parents.items():
            assert all(up_step[c] < up_step[dev] for c in children[dev] if dev != root)
            if up >= 0:  # after the root has it, and after the parent got it
                assert down_step[dev] > summed
                assert up == root or down_step[dev] > down_step[up]


@pytest.mark.parametrize("nodes, per_node", [(1, 8), (2, 8)])
def test_large_message_approaches_the_bandwidth_bound(nodes, per_node):
    intra, inter = 400e9, 10e9  # NVLink-like links inside a node, one NIC a node
    topo = cluster(nodes, per_node, intra, inter)
    tree = _time("allreduce_tree", topo, S, protocol="Simple")
    ring = _time("allreduce_ring", topo, S, protocol="Simple")
    # one node: each device sends S/2 up and S/2 down in each tree, 2S over its link;
    # two nodes: each NIC sends S/2 up one tree and S/2 down the other; NCCL's tree gets
    # 0.92 of the bandwidth the ring gets
    factor = nccl().factor("tree", "Simple", one_node=nodes == 1)
    bound = (2 * S / intra if nodes == 1 else S / inter) / factor
    hops = 2 * (per_node - 1 + math.log2(nodes))  # up and down, each hop's latency once
    latency = nccl().base_s("tree", "Simple") + hops * nccl().hop_s("net", "tree", "Simple", 0)
    assert bound < tree < 1.05 * bound + latency
    n = nodes * per_node
    if nodes == 1:  # the ring's 2(n-1)/n S/B against 2S/B: tree / ring -> n / (n-1)
        assert tree / ring < n / (n - 1) / factor * 1.05
    else:  # both move S through each NIC; the tree overlaps the chains inside the nodes
        assert abs(tree * factor / ring - 1) < 0.15


def test_small_message_latency_is_two_tree_depths():
    # NCCL's tree latency model: base + 2 ((m - 1) intra hops + log2(N) inter hops), in LL
    for nodes, per_node in [(64, 1), (8, 8), (2, 8)]:
        # (2 nodes: each tree's broadcast follows the other's reduce on the same pair of heads,
        # a new stream of chunks that pays its own latency)
        topo = cluster(nodes, per_node)
        tree, ring = _time("allreduce_tree", topo, 8), _time("allreduce_ring", topo, 8)
        depth_s = (per_node - 1) * INTRA_HOP_S + math.log2(nodes) * INTER_HOP_S
        assert tree == pytest.approx(nccl().base_s("tree", "LL") + 2 * depth_s, rel=1e-3)
        symmetric = _time("allreduce_tree", topo, 8, symmetric=True)
        assert symmetric == pytest.approx(tree, rel=1e-3)
        if nodes > 2:
            assert tree < ring
    # 2 log2(64) = 12 hops of 5 us against the ring's 2 (64 - 1) = 126 steps of 2.7 us
    wide = cluster(64, 1)
    assert _time("allreduce_tree", wide, 8) < _time("allreduce_ring", wide, 8) / 4


def test_tree_chunks_follow_nccl_and_are_capped():
    kib = 2**10
    assert tree_chunks(512 * kib * 200, depth=3) == 200  # 512 KiB chunks
    assert tree_chunks(2**20, depth=8) == 2**20 // (64 * kib)  # halved down to 64 KiB
    assert tree_chunks(2**20, depth=40) == 2**20 // (32 * kib)  # no smaller than 32 KiB
    assert tree_chunks(8, depth=5) == 1
    assert tree_chunks(2**32, depth=14) == TREE_MAX_CHUNKS
    assert tree_chunks(2**20, depth=8, chunk_bytes=2**16 / 4) == 64
    with pytest.raises(UserError, match="chunk_bytes"):
        tree_chunks(2**20, depth=8, chunk_bytes=0)


def test_steps_stay_few_on_a_thousand_devices():
    topo = cluster(128, 8)
    group = list(range(topo.size))
    phases = collective.get("allreduce_tree").phases(group, topo, 2.0**32)
    height = max(max(tree_heights(t).values()) for t in _trees(topo))
    assert height == 7 + 7  # the chain of 8, then log2(128) levels of nodes
    assert sum(p.steps for p in phases) == TREE_MAX_CHUNKS + 2 * height - 1
    assert len(phases) <= 4 * (height + 1)
    assert all(p.pipelined for p in phases)


def test_chunk_bytes_option_reaches_the_tree():
    topo = cluster(1, 4)
    few = _time("allreduce_tree", topo, S, chunk_bytes=S / 2)  # one chunk: no pipelining
    assert few > 1.5 * _time("allreduce_tree", topo, S)


def test_one_channel_per_nic_heads_each_chain_at_its_nic():
    intra, inter = link("intra", 100e9), link("inter", 10e9)
    topo = build_cluster(2, 4, intra, inter, link("host", 20e9), nics_per_node=2)
    chains = tree_chains(list(range(8)), topo)
    assert chains == [[[0, 1, 2, 3], [4, 5, 6, 7]], [[2, 3, 0, 1], [6, 7, 4, 5]]]
    one_nic = build_cluster(2, 4, intra, inter, link("host", 20e9), nics_per_node=1)
    assert _time("allreduce_tree", topo, S) < 0.6 * _time("allreduce_tree", one_nic, S)


@pytest.mark.parametrize("shape", [(1, 8), (2, 4), (16, 1)])
@pytest.mark.parametrize("size", [8, 1e5, S])
def test_allreduce_is_the_faster_of_ring_and_tree(shape, size):
    assert collective.get("allreduce").choices == ("allreduce_ring", "allreduce_tree")
    topo = cluster(*shape)
    chosen = _time("allreduce", topo, size)
    assert chosen in (_time("allreduce_ring", topo, size), _time("allreduce_tree", topo, size))
    assert chosen <= min(_time("allreduce_ring", topo, size),
                         _time("allreduce_tree", topo, size)) * (1 + 1e-3)


@pytest.mark.parametrize("nodes, per_node", [(1, 8), (2, 4), (3, 2), (13, 1), (16, 8)])
@pytest.mark.parametrize("size", [8, 26.2e6, 2.0**32])
def test_span_by_span_analysis_equals_the_phase_by_phase_one(nodes, per_node, size):
    # the symmetric shortcut analyses a tree span by span (only what starts or ends changes)
    topo = cluster(nodes, per_node)
    group = list(range(topo.size))
    planner = CommPlanner(Plan(devices=[IdealDevice()]), topo, {0: 0}, symmetric=True)
    spans, chunk = tree_spans(group, topo, size)
    by_phase = planner._analyse(span_phases(spans, chunk), 0)
    by_span = planner._analyse_spans(spans, chunk, 0)
    assert [load.phase.steps for load in by_span] == [load.phase.steps for load in by_phase]
    assert [set(load.drains) for load in by_span] == [set(load.drains) for load in by_phase]


@pytest.mark.parametrize("size", [8, 2**20, 26.2e6, 83e6, 2.0**32])
def test_sizes_of_one_chunk_count_share_one_analysis(size):
    # a tree's phases follow the size through its chunk count: from 2 x depth chunks on, more
    # chunks only lengthen the phase where every chunk is in flight
    topo = cluster(16, 8)
    group = list(range(topo.size))
    spec = collective.get("allreduce_tree")
    planner = CommPlanner(Plan(devices=[IdealDevice()]), topo, {0: 0}, symmetric=True)
    direct = planner._analysed("allreduce_tree", spec, group, 0, size, {})
    shaped, at = planner._shaped("allreduce_tree", spec, group, 0, size, {})
    assert [load.phase.steps for load in shaped] == [load.phase.steps for load in direct]
    for protocol in ("LL", "Simple"):
        variant = Variant("tree", protocol, one_node=False)
        assert predicted_s(shaped, size / at, variant) == pytest.approx(
            predicted_s(direct, 1.0, variant), rel=1e-12)
