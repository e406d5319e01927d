"""Topology: the cluster graph, its routes (fast structural routes agree with shortest
paths), latencies, and bad input."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from hardware_models.catalog_io import load_link
from hardware_models.topology import build_cluster, channel_id, from_edges, topology_from_dict
from simulator.core.errors import UserError

NVLINK, PCIE, IB = load_link("nvlink4"), load_link("pcie5-x16"), load_link("ib-ndr")


def _shortest_channels(topo, a, b):
    path = nx.shortest_path(topo.graph, topo.devices[a], topo.devices[b],
                            weight=lambda u, v, d: 1e-18 if d["link"] is None
                            else 1 / d["link"].bandwidth_bytes_per_s)
    return tuple(channel_id(u, v) for u, v in itertools.pairwise(path)
                 if topo.graph.edges[u, v]["link"] is not None)


@pytest.mark.parametrize("intra, host", [(NVLINK, PCIE), (PCIE, PCIE), (None, None)])
def test_structured_routes_are_the_shortest_paths(intra, host):
    topo = build_cluster(3, 4, intra, IB, host)
    for a in range(topo.size):
        for b in range(topo.size):
            assert topo.route(a, b) == _shortest_channels(topo, a, b)


def test_nvlink_node_routes_inside_over_nvlink_and_out_over_pcie_and_the_nic():
    topo = build_cluster(2, 8, NVLINK, IB, PCIE)
    inside = topo.route(0, 5)
    assert [topo.link(c).name for c in inside] == ["nvlink4", "nvlink4"]
    assert topo.latency_s(inside) == pytest.approx(NVLINK.latency_s)
    across = topo.route(1, 9)
    assert [topo.link(c).name for c in across] == ["pcie5-x16", "ib-ndr", "ib-ndr", "pcie5-x16"]
    assert topo.latency_s(across) == pytest.approx(PCIE.latency_s + IB.latency_s)
    assert topo.bandwidth_bytes_per_s(across[1]) == IB.bandwidth_bytes_per_s


def test_pcie_node_shares_one_switch_and_its_nic():
    topo = build_cluster(3, 4, PCIE, IB, PCIE)
    assert [topo.link(c).name for c in topo.route(0, 3)] == ["pcie5-x16", "pcie5-x16"]
    assert [topo.link(c).name for c in topo.route(0, 4)] == [
        "pcie5-x16", "ib-ndr", "ib-ndr", "pcie5-x16"]
    nic_up = {topo.route(d, 4)[1] for d in range(4)}
    assert nic_up == {"n0.nic0>spine"}  # one NIC per node: all four devices share it


def test_rails_give_each_device_group_its_own_nic():
    topo = build_cluster(2, 8, NVLINK, IB, PCIE, nics_per_node=8)
    assert len({topo.route(d, 8)[1] for d in range(8)}) == 8
    assert topo.graph.number_of_nodes() == 1 + 2 * (1 + 8 + 8)


def test_directions_are_separate_channels():
    topo = build_cluster(1, 2, NVLINK, None)
    assert topo.route(0, 1) == ("d0>n0.fabric", "n0.fabric>d1")
    assert topo.route(1, 0) == ("d1>n0.fabric", "n0.fabric>d0")
    assert topo.route(1, 1) == ()


def test_explicit_edges_route_by_least_time_per_byte():
    topo = from_edges(["a", "b"], [("a", "b", load_link("eth-1g")), ("a", "s", NVLINK),
                                   ("s", "b", NVLINK)])
    assert topo.route(0, 1) == ("a>s", "s>b")


def test_from_dict_builds_both_forms():
    topo = topology_from_dict({"nodes": 16, "devices_per_node": 8, "intra": "nvlink4",
                               "inter": "ib-ndr"}, host_link="pcie5-x16")
    assert topo.size == 128 and topo.nodes == 16
    edges = topology_from_dict({"devices": ["x", "y"], "edges": [["x", "y", "ib-fdr"]]})
    assert edges.route(0, 1) == ("x>y",)


@pytest.mark.parametrize("data, words", [
    ({"nodes": 2, "devices_per_node": 2, "intra": "nvlink9", "inter": "ib-ndr"},
     ["intra", "nvlink9"]),
    ({"nodes": 0, "devices_per_node": 2}, ["nodes"]),
    ({"nodes": 2, "devices_per_node": 2, "intra": "nvlink4"}, ["inter"]),
    ({"nodes": 2, "devices_per_node": 3, "inter": "ib-ndr", "nics_per_node": 2}, ["nics_per_node"]),
    ({"nodes": 2, "gpus": 3}, ["unknown field 'gpus'"]),
    ({"devices": ["x", "y"], "edges": [["x", "y"]]}, ["edges[0]"]),
    ({"devices": ["x", "y", "z"], "edges": [["x", "y", "ib-fdr"]]}, ["z has no edge"]),
])
def test_bad_topologies_are_user_errors(data, words):
    with pytest.raises(UserError) as err:
        topology_from_dict(data)
    for word in words:
        assert word in str(err.value)


def test_disconnected_devices_have_no_route():
    topo = from_edges(["x", "y", "z", "w"], [("x", "y", IB), ("z", "w", IB)])
    with pytest.raises(UserError, match="no route"):
        topo.route(0, 2)
