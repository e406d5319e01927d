"""Helpers for the multi-device tests: links with round numbers and small clusters."""

from __future__ import annotations

from hardware_models.links import Link
from hardware_models.spec import LinkSpec
from hardware_models.topology import Topology, build_cluster


def link(name: str, bandwidth_bytes_per_s: float, latency_s: float = 1e-6) -> Link:
    return Link(LinkSpec(name=name, display_name=name, bandwidth_bytes_per_s=bandwidth_bytes_per_s,
                         latency_s=latency_s, sources=["test"]))


def cluster(nodes: int, per_node: int, intra_bytes_per_s: float = 100e9,
            inter_bytes_per_s: float = 10e9, latency_s: float = 1e-6) -> Topology:
    """PCIe-style nodes (the NIC on the devices' switch) with round-number links."""
    intra = link("intra", intra_bytes_per_s, latency_s)
    return build_cluster(nodes, per_node, intra, link("inter", inter_bytes_per_s, latency_s), intra)
