"""The parts of `hardware` that shape a cluster beyond counts: device groups of several kinds
(a mixed cluster), a topology written as a graph, and degraded or failed links.

- `groups: [{device, count, devices_per_node, intra_link}, ...]`: nodes of each group's
  device kind, joined by `hardware.inter_link` (devices numbered group by group).
- `topology: {nodes: [{name, devices, switches, nics, device}], switches, nics, devices,
  links: [[A, B, LINK], {between: [A, B], link: LINK}, ...]}`: every vertex and cable.
- `link_faults: [{between: [A, B], bandwidth_fraction: F} | {between: [A, B], failed: true}]`:
  on a graph's links or on a built cluster's (`d0`, `n0.fabric`, `n0.nic0`, `spine`).

Each is checked while the file is read: duplicate vertex names, self-loops, links to unknown
vertices, unknown link names and devices cut off from the rest are one located line.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from hardware_models.spec import CPUSpec, GPUSpec
from simulator.config.errors import invalid
from simulator.config.refs import DerivedDevice, device_ref, link_ref

MAX_DEVICES = 131_072  # the largest cluster simulated (docs/reliability.md, "Hostile input")
MAX_DEVICES_PER_NODE = 8
DeviceCount = Annotated[int, Field(strict=True, gt=0, le=MAX_DEVICES)]
VertexName = Annotated[str, Field(strict=True, min_length=1, max_length=120,
                                  pattern=r"^[A-Za-z0-9_.:/+-]+$")]
FREE = "none"  # a graph link that costs nothing (a NIC on the devices' own PCIe switch)
MAX_GRAPH_LINKS = 4 * MAX_DEVICES


# a device or a link as a field: checked against the catalog (or its file) when read
Device = Annotated[str | DerivedDevice | CPUSpec | GPUSpec, BeforeValidator(device_ref)]
LinkName = Annotated[str | None, BeforeValidator(link_ref)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def device_label(device: Any) -> str:
    """A device reference as results name it."""
    if isinstance(device, str):
        return device
    return device.display if isinstance(device, DerivedDevice) else str(device.name)


class DeviceGroup(_Strict):
    """Devices of one kind in a mixed cluster, `devices_per_node` to a node."""

    device: Device
    count: DeviceCount
    devices_per_node: DeviceCount | None = None
    intra_link: LinkName = None

    @model_validator(mode="after")
    def _node_fits(self) -> DeviceGroup:
        if self.count % self.per_node:
            raise invalid(f"count ({self.count}) must be a multiple of devices_per_node "
                          f"({self.per_node})", ("devices_per_node",))
        return self

    @property
    def per_node(self) -> int:
        return self.devices_per_node or min(self.count, MAX_DEVICES_PER_NODE)


class GraphNode(_Strict):
    """A server of a graph: its devices (of `device`'s kind, default the hardware's),
    switches and NICs."""

    name: VertexName
    devices: list[VertexName] = Field(min_length=1, max_length=MAX_DEVICES)
    switches: list[VertexName] = Field(default_factory=list, max_length=MAX_DEVICES)
    nics: list[VertexName] = Field(default_factory=list, max_length=MAX_DEVICES)
    device: Device | None = None


def _link_item(value: Any) -> Any:
    """`[A, B, LINK]` is `{between: [A, B], link: LINK}`."""
    if isinstance(value, list) and len(value) == 3:
        return {"between": value[:2], "link": value[2]}
    if isinstance(value, list):
        raise invalid(f"a link is [A, B, LINK] or {{between: [A, B], link: LINK}}, got a list "
                      f"of {len(value)}")
    return value


class GraphLink(_Strict):
    """A cable between two vertices: a catalog link (or a link file), or `none` (free)."""

    between: tuple[VertexName, VertexName]
    link: str | None

    @field_validator("link", mode="before")
    @classmethod
    def _link(cls, value: Any) -> str | None:
        if value == FREE:
            return None
        return link_ref(value)


class TopologyGraph(_Strict):
    """A cluster as a graph; devices are numbered in the order they are listed (nodes
    first). A device outside every node is a node of its own."""

    nodes: list[GraphNode] = Field(default_factory=list, max_length=MAX_DEVICES)
    devices: list[VertexName] = Field(default_factory=list, max_length=MAX_DEVICES)
    switches: list[VertexName] = Field(default_factory=list, max_length=MAX_DEVICES)
    nics: list[VertexName] = Field(default_factory=list, max_length=MAX_DEVICES)
    links: list[Annotated[GraphLink, BeforeValidator(_link_item)]] = Field(
        min_length=1, max_length=MAX_GRAPH_LINKS)

    @model_validator(mode="after")
    def _well_formed(self) -> TopologyGraph:
        where = self._vertices()
        if not self.device_names:
            raise invalid("a topology needs devices (in nodes, or under devices)", ("devices",))
        if len(self.device_names) > MAX_DEVICES:
            raise invalid(f"at most {MAX_DEVICES} devices, got {len(self.device_names)}",
                          ("devices",))
        seen: dict[frozenset[str], int] = {}
        for i, item in enumerate(self.links):
            a, b = item.between
            for end, name in enumerate((a, b)):
                if name not in where:
                    raise invalid(f"'{name}' is not a device, switch or NIC of this topology",
                                  ("links", i, "between", end))
            if a == b:
                raise invalid(f"links {a} to itself", ("links", i, "between"))
            pair = frozenset((a, b))
            if pair in seen:
                raise invalid(f"{a} - {b} is already linked by links[{seen[pair]}]",
                              ("links", i, "between"))
            seen[pair] = i
        self._connected()
        return self

    def _vertices(self) -> dict[str, tuple[str | int, ...]]:
        """Every vertex name and where it is written; a name twice is an error."""
        where: dict[str, tuple[str | int, ...]] = {}
        places: list[tuple[str, tuple[str | int, ...]]] = []
        for i, node in enumerate(self.nodes):
            places.append((node.name, ("nodes", i, "name")))
            for part in ("devices", "switches", "nics"):
                places += [(n, ("nodes", i, part, k)) for k, n in enumerate(getattr(node, part))]
        for part in ("devices", "switches", "nics"):
            places += [(n, (part, k)) for k, n in enumerate(getattr(self, part))]
        for name, loc in places:
            if name in where:
                first = ".".join(map(str, where[name]))
                raise invalid(f"duplicate name '{name}' (also {first}); vertex names must be "
                              "unique", loc)
            where[name] = loc
        return where

    def _connected(self) -> None:
        """Every device reaches the first one over the links."""
        neighbours: dict[str, list[str]] = {}
        for item in self.links:
            a, b = item.between
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
        first = self.device_names[0]
        reached, frontier = {first}, [first]
        while frontier:
            for nxt in neighbours.get(frontier.pop(), ()):
                if nxt not in reached:
                    reached.add(nxt)
                    frontier.append(nxt)
        for name in self.device_names:
            if name not in reached:
                raise invalid(f"device {name} is not connected to {first}: no path over the "
                              "links", ("links",))

    @property
    def device_names(self) -> list[str]:
        return [d for node in self.nodes for d in node.devices] + list(self.devices)


BUILT_VERTEX = re.compile(r"^(d\d+|n\d+\.fabric|n\d+\.nic\d+|spine)$")


class LinkFault(_Strict):
    """A cable that carries `bandwidth_fraction` of its bandwidth, or none (`failed`)."""

    between: tuple[VertexName, VertexName]
    bandwidth_fraction: Annotated[float, Field(strict=True, gt=0, lt=1, allow_inf_nan=False)] \
        | None = Field(None, description="the share of its bandwidth left, in (0, 1)")
    failed: Annotated[bool, Field(strict=True)] = False

    @model_validator(mode="after")
    def _one(self) -> LinkFault:
        if self.failed == (self.bandwidth_fraction is not None):
            raise invalid("give bandwidth_fraction (degraded, 0 to 1) or failed: true, not "
                          "both or neither", ("failed",))
        return self

    @property
    def fraction(self) -> float:
        """The share of the bandwidth left (0: failed)."""
        return 0.0 if self.failed else float(self.bandwidth_fraction or 0.0)


def check_link_faults(faults: list[LinkFault], graph: TopologyGraph | None, count: int) -> None:
    """Each fault names a link of the graph (or vertices of a built cluster of `count`
    devices), once."""
    linked = {frozenset(item.between) for item in graph.links} if graph is not None else None
    seen: dict[frozenset[str], int] = {}
    for i, fault in enumerate(faults):
        pair = frozenset(fault.between)
        if linked is not None and pair not in linked:
            raise invalid(f"the topology has no link between {fault.between[0]} and "
                          f"{fault.between[1]}", ("link_faults", i, "between"))
        if linked is None:
            for end, name in enumerate(fault.between):
                if not BUILT_VERTEX.match(name):
                    raise invalid(f"'{name}' is not a vertex of a built cluster (d0, d1, ..., "
                                  "n0.fabric, n0.nic0, ..., spine)",
                                  ("link_faults", i, "between", end))
                if name[0] == "d" and int(name[1:]) >= count:
                    raise invalid(f"device {name} is not in a cluster of {count} (d0 to "
                                  f"d{count - 1})", ("link_faults", i, "between", end))
        if pair in seen:
            raise invalid(f"this link is already listed at link_faults[{seen[pair]}]",
                          ("link_faults", i, "between"))
        seen[pair] = i
