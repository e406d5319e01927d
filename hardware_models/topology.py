"""Topology: a cluster as a networkx graph of devices, switches and links, and its routes.

`build_cluster(nodes, devices_per_node, intra, inter, ...)` builds the common shape. In
each node the devices reach each other through one switch (`n{j}.fabric`) over the intra
link: NVLink through an NVSwitch, or PCIe through a PCIe switch. Each node has NICs
(`n{j}.nic{k}`) on the inter link to one cluster switch (`spine`, taken as non-blocking,
as a full fat tree is). With NVLink inside the node a device reaches its NIC over its own
host link (PCIe, GPUDirect RDMA), device l of a node using NIC l * nics // devices_per_node
(rail-aligned); with PCIe inside the node the NICs hang off the same PCIe switch.
`from_edges` builds any other graph; its routes are the paths of least time per byte.

Every cable is two channels, one per direction, each with the link's bandwidth per
direction. A link's catalog latency is end to end through one switch, so each of the two
hops of a switched crossing carries half of it. Edges whose link is None (shared memory,
a NIC on the same PCIe switch) are free and are left out of routes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from hardware_models.links import degraded
from simulator.core.errors import UserError
from simulator.core.held_cache import HeldCache

SPINE = "spine"


def channel_id(u: str, v: str) -> str:
    return f"{u}>{v}"


@dataclass
class Topology:
    """A cluster graph; `devices` is the graph node of each device index, in order.

    `node_ids` holds each device's node (server) where nodes differ in size (empty: device
    // devices_per_node); `node_aware`: nodes are servers, so a hop between two of them is a
    network hop (built clusters, YAML graphs with nodes). `uniform`: every device sees the
    same links (a built cluster with every link healthy), so one device may stand for all."""

    graph: nx.Graph
    devices: list[str]
    devices_per_node: int = 1
    nics_per_node: int = 1
    structured: bool = False
    intra: Any = None  # the links a built cluster was made of (None: free or absent)
    inter: Any = None
    node_ids: tuple[int, ...] = ()
    node_aware: bool = False
    uniform: bool = False
    faulted: frozenset[frozenset[str]] = frozenset()  # cables degraded or failed
    _routes: dict[tuple[int, int], tuple[str, ...]] = field(default_factory=dict, repr=False)
    _firsts: dict[int, int] = field(default_factory=dict, repr=False)
    _paths: dict[Any, dict[str, list[str]]] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return len(self.devices)

    @property
    def nodes(self) -> int:
        return self.node_ids[-1] + 1 if self.node_ids else self.size // self.devices_per_node

    def node_of(self, device: int) -> int:
        return self.node_ids[device] if self.node_ids else device // self.devices_per_node

    def _local(self, device: int) -> tuple[int, int]:
        """A device's index inside its node and the node's size."""
        if not self.node_ids:
            return device % self.devices_per_node, self.devices_per_node
        if not self._firsts:
            for d, node in enumerate(self.node_ids):
                self._firsts.setdefault(node, d)
        node = self.node_ids[device]
        end = self._firsts.get(node + 1, self.size)
        return device - self._firsts[node], end - self._firsts[node]

    def link(self, channel: str) -> Any:
        u, v = channel.split(">")
        return self.graph.edges[u, v]["link"]

    def bandwidth_bytes_per_s(self, channel: str) -> float:
        return float(self.link(channel).bandwidth_bytes_per_s)

    def latency_s(self, route: tuple[str, ...]) -> float:
        """Half the link latency per hop: a switched crossing pays the link's latency once."""
        return sum(self.link(c).latency_s / 2 for c in route)

    def route(self, a: int, b: int) -> tuple[str, ...]:
        """The channels a transfer from device a to device b crosses (free hops left out)."""
        if a == b:
            return ()
        if self.structured:
            path = self._structured_path(a, b)
            if not self.faulted:
                return self._channels(path)
            hurt = self._first_fault(path)
            if hurt is None:  # still a path of least time: the others only got slower
                return self._channels(path)
            if (a, b) not in self._routes:
                middle = path.index(SPINE) if SPINE in path else 1  # the spine, or the switch
                self._routes[(a, b)] = self._detour(a, b, hurt < middle)
            return self._routes[(a, b)]
        if (a, b) not in self._routes:
            self._routes[(a, b)] = self._channels(self._shortest(a, b))
        return self._routes[(a, b)]

    def _first_fault(self, path: list[str]) -> int | None:
        """The index of the first hop of `path` over a degraded or failed cable (or one the
        graph does not have: a device whose own link to its NIC failed)."""
        return next((i for i, (u, v) in enumerate(itertools.pairwise(path))
                     if frozenset((u, v)) in self.faulted or not self.graph.has_edge(u, v)),
                    None)

    def _detour(self, a: int, b: int, from_a: bool) -> tuple[str, ...]:
        """A route round a fault: the path of least time from the end on whose side of the
        spine (or of the node's switch) the fault is, reversed if that is b (cables carry
        both ways alike), so that the devices behind one fault share one search."""
        if from_a:
            return self._channels(self._shortest(a, b))
        return self._channels(self._shortest(b, a)[::-1])

    def _channels(self, path: list[str]) -> tuple[str, ...]:
        hops = itertools.pairwise(path)
        return tuple(channel_id(u, v) for u, v in hops
                     if self.graph.edges[u, v]["link"] is not None)

    def _shortest(self, a: int, b: int) -> list[str]:
        """The path of least time per byte, from one search per source (its paths to every
        destination kept: a ring or a tree asks each source for a few)."""
        key = ("from", a)
        paths = self._paths.get(key)
        if paths is None:
            paths = self._paths[key] = nx.single_source_dijkstra_path(
                self.graph, self.devices[a], weight=_seconds_per_byte)
        path = paths.get(self.devices[b])
        if path is None:
            raise UserError(f"topology: no route from {self.devices[a]} to "
                            f"{self.devices[b]}")
        return path

    def _structured_path(self, a: int, b: int) -> list[str]:
        na, nb = self.node_of(a), self.node_of(b)
        if na == nb:
            return [self.devices[a], f"n{na}.fabric", self.devices[b]]
        return self._to_spine(a) + [SPINE] + self._to_spine(b)[::-1]

    def _to_spine(self, device: int) -> list[str]:
        node, (local, size) = self.node_of(device), self._local(device)
        nic = f"n{node}.nic{local * self.nics_per_node // size}"
        if self.graph.has_edge(self.devices[device], nic):
            return [self.devices[device], nic]
        return [self.devices[device], f"n{node}.fabric", nic]


def _seconds_per_byte(u: str, v: str, data: dict[str, Any]) -> float:
    link = data["link"]
    return 1e-18 if link is None else 1.0 / link.bandwidth_bytes_per_s


# The clusters built last, by shape and by the link objects (held in the entry, so that their
# ids are not reused while it lives; catalog links are read once, so every sweep point on a
# cluster of one shape shares its graph). A Topology is never changed after it is built but
# for the routes it memoises, which depend on the graph alone.
_clusters = HeldCache(32)


def build_cluster(nodes: int, devices_per_node: int, intra: Any, inter: Any,
                  host: Any = None, nics_per_node: int = 1) -> Topology:
    """`nodes` x `devices_per_node` devices; links are Link objects (or None: free)."""
    for name, value in (("nodes", nodes), ("devices_per_node", devices_per_node),
                        ("nics_per_node", nics_per_node)):
        if not isinstance(value, int) or value < 1:
            raise UserError(f"topology: {name} must be a positive integer, got {value!r}")
    links, shape = (intra, inter, host), (nodes, devices_per_node, nics_per_node)
    topo: Topology | None = _clusters.get(links, shape)
    if topo is None:
        topo = _build_cluster(nodes, devices_per_node, intra, inter, host, nics_per_node)
        _clusters.put(links, shape, topo)
    return topo


@dataclass(frozen=True)
class NodeShape:
    """One node of a built cluster: its devices, the link inside it and each device's host
    link (the device kind's: PCIe)."""

    devices: int
    intra: Any
    host: Any = None


def _build_cluster(nodes: int, devices_per_node: int, intra: Any, inter: Any,
                   host: Any, nics_per_node: int) -> Topology:
    return build_nodes([NodeShape(devices_per_node, intra, host)] * nodes, inter, nics_per_node)


def build_nodes(shapes: list[NodeShape], inter: Any, nics_per_node: int = 1) -> Topology:
    """Nodes of their own sizes and links (a mixed cluster), each built as in
    `build_cluster`; device indices run node by node."""
    if len(shapes) > 1 and inter is None:
        raise UserError("topology: inter link is required when there is more than one node")
    g = nx.Graph()
    g.add_node(SPINE, kind="switch")
    devices: list[str] = []
    node_ids: list[int] = []
    for j, shape in enumerate(shapes):
        _add_node(g, j, shape, len(devices), nics_per_node, inter)
        devices += [f"d{len(devices) + local}" for local in range(shape.devices)]
        node_ids += [j] * shape.devices
    sizes = {shape.devices for shape in shapes}
    intras = {id(shape.intra) for shape in shapes}
    same = len(sizes) == 1 and len(intras) == 1 and len({id(s.host) for s in shapes}) == 1
    per_node = max(sizes)
    return Topology(g, devices, per_node, nics_per_node, structured=True,
                    intra=shapes[0].intra if per_node > 1 and len(intras) == 1 else None,
                    inter=inter if len(shapes) > 1 else None,
                    node_ids=() if same else tuple(node_ids), node_aware=True, uniform=same)


def _add_node(g: nx.Graph, j: int, shape: NodeShape, first: int, nics: int, inter: Any) -> None:
    intra, host = shape.intra, shape.host
    if shape.devices % nics:
        raise UserError(f"topology: devices_per_node ({shape.devices}) must be a multiple "
                        f"of nics_per_node ({nics})")
    own_host_link = host is not None and (intra is None or intra.name != host.name)
    g.add_node(f"n{j}.fabric", kind="switch")
    for k in range(nics):
        nic = f"n{j}.nic{k}"
        g.add_node(nic, kind="nic")
        g.add_edge(nic, SPINE, link=inter)
        if not own_host_link:
            g.add_edge(f"n{j}.fabric", nic, link=None)
    for local in range(shape.devices):
        dev = f"d{first + local}"
        g.add_node(dev, kind="device", node=j)
        g.add_edge(dev, f"n{j}.fabric", link=intra)
        if own_host_link:
            g.add_edge(dev, f"n{j}.nic{local * nics // shape.devices}", link=host)


def from_edges(devices: list[str], edges: list[tuple[str, str, Any]]) -> Topology:
    """Any graph: `devices` name the device vertices in index order; edges carry Links."""
    g = nx.Graph()
    for dev in devices:
        g.add_node(dev, kind="device")
    for u, v, link in edges:
        if u == v:
            raise UserError(f"topology: edge {u} - {v} connects a vertex to itself")
        g.add_edge(u, v, link=link)
    missing = [d for d in devices if g.degree(d) == 0]
    if missing:
        raise UserError(f"topology: device {missing[0]} has no edge")
    return Topology(g, list(devices))


def from_graph(nodes: list[tuple[list[str], list[str], list[str]]], loose: list[str],
               others: list[tuple[str, str]], edges: list[tuple[str, str, Any]]) -> Topology:
    """A graph written out: `nodes` (devices, switches, NICs of each server), devices outside
    every node (`loose`: a node of their own each), other vertices (name, kind) and cables
    (Links, or None: free). Devices are numbered node by node, then the loose ones; routes
    are the paths of least time per byte, and the devices are simulated one by one."""
    g = nx.Graph()
    devices: list[str] = []
    node_ids: list[int] = []
    for j, (devs, switches, node_nics) in enumerate(nodes):
        for name in devs:
            g.add_node(name, kind="device", node=j)
        g.add_nodes_from(switches, kind="switch")
        g.add_nodes_from(node_nics, kind="nic")
        devices += devs
        node_ids += [j] * len(devs)
    for k, name in enumerate(loose):
        g.add_node(name, kind="device", node=len(nodes) + k)
        devices.append(name)
        node_ids.append(len(nodes) + k)
    for name, kind in others:
        g.add_node(name, kind=kind)
    for u, v, link in edges:
        g.add_edge(u, v, link=link)
    nics = min((len(n[2]) for n in nodes), default=1) or 1
    sizes = [len(n[0]) for n in nodes] or [1]
    intra, inter = _graph_links(g, nodes)
    return Topology(g, devices, max(sizes), nics, intra=intra if max(sizes) > 1 else None,
                    inter=inter if len(nodes) + len(loose) > 1 else None,
                    node_ids=tuple(node_ids), node_aware=bool(nodes))


def _graph_links(g: nx.Graph, nodes: list[tuple[list[str], list[str], list[str]]]
                 ) -> tuple[Any, Any]:
    """The link from devices to their node's switches and the link out of the nodes' NICs,
    where one link serves each (as a built cluster names its intra and inter links)."""
    inside, out = [], []
    for devs, switches, nics in nodes:
        mine = set(devs) | set(switches) | set(nics)
        inside += [g.edges[d, sw]["link"] for d in devs for sw in switches if g.has_edge(d, sw)]
        out += [g.edges[nic, v]["link"] for nic in nics for v in g.neighbors(nic)
                if v not in mine]
    return _one_link(inside), _one_link(out)


def _one_link(links: list[Any]) -> Any:
    """The link all of `links` are (None: none, or several)."""
    names = {getattr(link, "name", None) for link in links}
    return links[0] if links and len(names) == 1 and None not in names else None


def with_link_faults(topo: Topology, faults: list[tuple[str, str, float]],
                     field_name: str = "link_faults") -> Topology:
    """`topo` with each (A, B, fraction) cable carrying `fraction` of its bandwidth (0:
    failed, taken out): routes go round over what is left; a device cut off is an error."""
    g = topo.graph.copy()
    for i, (a, b, fraction) in enumerate(faults):
        where = f"{field_name}[{i}].between"
        if not g.has_edge(a, b):
            near = sorted(g.neighbors(a)) if a in g else []
            hint = f"; {a} is linked to {', '.join(near)}" if near else f"; no vertex {a}"
            raise UserError(f"{where}: the cluster has no link between {a} and {b}{hint}")
        link = g.edges[a, b]["link"]
        if fraction == 0.0:
            g.remove_edge(a, b)
        elif link is None:
            raise UserError(f"{where}: {a} - {b} is free (one board): it has no bandwidth to "
                            "degrade; give failed: true to cut it")
        else:
            g.edges[a, b]["link"] = degraded(link, fraction)
    reached = nx.node_connected_component(g, topo.devices[0])
    cut = next((d for d in topo.devices if d not in reached), None)
    if cut is not None:
        raise UserError(f"{field_name}: device {cut} is cut off from {topo.devices[0]}: no "
                        "route is left between them")
    node_ids = topo.node_ids or tuple(topo.node_of(d) for d in range(topo.size))
    return Topology(g, list(topo.devices), topo.devices_per_node, topo.nics_per_node,
                    structured=topo.structured, intra=topo.intra, inter=topo.inter,
                    node_ids=node_ids, node_aware=topo.node_aware,
                    faulted=frozenset(frozenset((a, b)) for a, b, _ in faults))


def _catalog_link(name: str | None, field_name: str) -> Any:
    from hardware_models.catalog_io import link_names, load_link

    if name is None or str(name).lower() == "none":
        return None
    if name not in link_names():
        raise UserError(f"topology: {field_name}: unknown link '{name}'; valid link names: "
                        f"{', '.join(link_names())}")
    return load_link(name)


def topology_from_dict(data: dict[str, Any], host_link: str | None = None) -> Topology:
    """From YAML-like data: {nodes, devices_per_node, intra, inter, nics_per_node} or
    {devices: [names], edges: [[u, v, link name or none], ...]}."""
    if "edges" in data:
        unknown = set(data) - {"devices", "edges"}
        if unknown or "devices" not in data:
            raise UserError(f"topology: explicit edges need exactly 'devices' and 'edges', got "
                            f"{sorted(data)}")
        edges = []
        for i, edge in enumerate(data["edges"]):
            if not isinstance(edge, (list, tuple)) or len(edge) != 3:
                raise UserError(f"topology: edges[{i}]: expected [u, v, link], got {edge!r}")
            edges.append((str(edge[0]), str(edge[1]), _catalog_link(edge[2], f"edges[{i}]")))
        return from_edges([str(d) for d in data["devices"]], edges)
    unknown = set(data) - {"nodes", "devices_per_node", "intra", "inter", "nics_per_node"}
    if unknown:
        raise UserError(f"topology: unknown field '{min(unknown)}'; valid fields: nodes, "
                        "devices_per_node, intra, inter, nics_per_node (or devices, edges)")
    return build_cluster(data.get("nodes", 1), data.get("devices_per_node", 1),
                         _catalog_link(data.get("intra"), "intra"),
                         _catalog_link(data.get("inter"), "inter"),
                         _catalog_link(host_link, "host_link"), data.get("nics_per_node", 1))
