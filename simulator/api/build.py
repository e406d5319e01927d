"""From a validated Scenario to the objects a prediction runs on: the model definition, the
device model (catalog, modified, inline or a profile by path), the topology and the graph
factory that every strategy draws its OpGraphs from.

Defaults: the intra-node link is NVLink on SXM boards (nvlink4 for h100-sxm and h200,
nvlink3 for a100-sxm4) and the device's host link otherwise; the inter-node link is ib-ndr.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hardware_models.catalog_io import (
    build_device,
    default_profile,
    link_names,
    load_link,
    load_spec,
    make_device,
)
from hardware_models.link_files import is_link_file, load_link_file
from hardware_models.profile import spec_sheet_profile
from hardware_models.spec import CPUSpec, GPUSpec
from hardware_models.topology import (
    NodeShape,
    Topology,
    build_cluster,
    build_nodes,
    from_graph,
    with_link_faults,
)
from simulator.config.cluster import TopologyGraph
from simulator.config.refs import DerivedDevice
from simulator.config.schema import Hardware, Scenario, Workload
from simulator.core.errors import UserError
from simulator.core.held_cache import HeldCache
from workloads.builder import build_graph, resolve_layers
from workloads.importers import resolve_model
from workloads.model_def import ModelDef
from workloads.ops import OpGraph
from workloads.resolve import ResolvedLayer, forget_resolved
from workloads.task_graph import TaskGraph, build_task_graph

NVLINK_OF = {"h100-sxm": "nvlink4", "h200": "nvlink4", "a100-sxm4": "nvlink3"}
DEFAULT_INTER = "ib-ndr"


def workload_model(workload: Workload) -> ModelDef | TaskGraph:
    """The workload's model (for its sequence length where it gives one) or task graph."""
    if isinstance(workload.model, TaskGraph):
        return workload.model
    return resolve_model(workload.model, workload.seq_len, workload.unsupported_as_elementwise)


def _derived_device(ref: DerivedDevice, hw: Hardware) -> Any:
    """The modified spec with the base device's profile: same efficiencies, new peaks."""
    base = load_spec(ref.base)
    profile = spec_sheet_profile(ref.base) if hw.spec_sheet else default_profile(base, hw.framework)
    profile = profile.model_copy(update={"device": ref.display,
                                         "origin": f"{profile.origin}, of {ref.base}"})
    return build_device(ref.spec, profile)


def hardware_device(hw: Hardware, ref: Any = None) -> Any:
    """A ready device model for the hardware's device (or `ref`, one kind of a mix: catalog,
    modified, inline or profile path), on `hw.threads` threads where given (CPUs only)."""
    device = _device(hw.device if ref is None else ref, hw)
    if hw.threads is None:
        return device
    if not hasattr(device, "with_threads"):
        raise UserError(f"--threads: only a CPU runs on a number of threads; "
                        f"{device.name} is a {device.kind}")
    return device.with_threads(hw.threads)


def _device(ref: Any, hw: Hardware) -> Any:
    if isinstance(ref, str):
        return make_device(ref, spec_sheet=hw.spec_sheet, framework=hw.framework)
    if isinstance(ref, DerivedDevice):
        return _derived_device(ref, hw)
    spec: CPUSpec | GPUSpec = ref
    profile = (spec_sheet_profile(spec.name) if hw.spec_sheet
               else default_profile(spec, hw.framework))
    return build_device(spec, profile)


def hardware_kinds(hw: Hardware, device: Any) -> tuple[Any, ...]:
    """Each device's model in a mixed cluster, in device order (empty: one kind, `device`)."""
    if not hw.mixed:
        return ()
    models: dict[str, Any] = {repr(hw.device): device}
    kinds: list[Any] = []
    for ref, count in hw.device_counts():
        if repr(ref) not in models:
            models[repr(ref)] = hardware_device(hw, ref)
        kinds += [models[repr(ref)]] * count
    return tuple(kinds)


def default_intra_link(device: Any) -> str | None:
    """The device kind's own chip-to-chip link where it has one (a TPU's ICI: `chip_link`),
    NVLink through an NVSwitch on SXM boards, else the device's host link (PCIe)."""
    if getattr(device, "chip_link", None):
        return str(device.chip_link)
    if device.name in NVLINK_OF:
        return NVLINK_OF[device.name]
    host = getattr(device, "host_link", None)
    return host.name if host is not None else None


def _link(name: str, field: str) -> Any:
    if is_link_file(name):  # a link spec or a calibrate-link profile, by path
        return load_link_file(Path(name))
    if name not in link_names():
        raise UserError(
            f"{field}: unknown link '{name}'; valid link names: {', '.join(link_names())}")
    return load_link(name)


def make_topology(device: Any, devices: int, devices_per_node: int, intra_link: str | None,
                  inter_link: str | None, nics_per_node: int = 1) -> Topology:
    """`devices` devices, `devices_per_node` to a node (counts validated by the config)."""
    intra = intra_link if intra_link is not None else default_intra_link(device)
    inter = inter_link if inter_link is not None else DEFAULT_INTER
    return build_cluster(devices // devices_per_node, devices_per_node,
                         _link(intra, "intra_link") if intra else None, _link(inter, "inter_link"),
                         getattr(device, "host_link", None), nics_per_node)


def hardware_topology(hw: Hardware, device: Any, nics_per_node: int = 1,
                      kinds: tuple[Any, ...] = ()) -> Topology:
    """The hardware's cluster (from counts, groups or a graph), its link faults applied."""
    if hw.topology is not None:
        topo = _graph_topology(hw.topology)
    elif hw.groups is not None:
        topo = _group_topology(hw, kinds or (device,) * hw.count, nics_per_node)
    else:
        topo = make_topology(device, hw.count, hw.per_node, hw.intra_link, hw.inter_link,
                             nics_per_node)
    if not hw.link_faults:
        return topo
    return with_link_faults(topo, [(*f.between, f.fraction) for f in hw.link_faults],
                            "hardware.link_faults")


def _group_topology(hw: Hardware, kinds: tuple[Any, ...], nics_per_node: int) -> Topology:
    """Each group's nodes with its own link inside (default: its device's) and host link."""
    shapes, first = [], 0
    assert hw.groups is not None
    for i, group in enumerate(hw.groups):
        device = kinds[first]
        intra = group.intra_link or default_intra_link(device)
        link = _link(intra, f"hardware.groups[{i}].intra_link") if intra else None
        shapes += [NodeShape(group.per_node, link, getattr(device, "host_link", None))] * (
            group.count // group.per_node)
        first += group.count
    return build_nodes(shapes, _link(hw.inter_link or DEFAULT_INTER, "inter_link"),
                       nics_per_node)


def _graph_topology(graph: TopologyGraph) -> Topology:
    nodes = [(list(n.devices), list(n.switches), list(n.nics)) for n in graph.nodes]
    others = [(n, "switch") for n in graph.switches] + [(n, "nic") for n in graph.nics]
    edges = [(a, b, None if item.link is None else _link(item.link, f"topology.links[{i}]"))
             for i, item in enumerate(graph.links) for a, b in (item.between,)]
    return from_graph(nodes, list(graph.devices), others, edges)


def graph_factory(model: ModelDef | TaskGraph,
                  workload: Workload) -> Callable[[int], OpGraph]:
    """batch -> the OpGraph of one step with every option of the workload (a task graph:
    its one run, whatever the batch)."""
    if isinstance(model, TaskGraph):
        return lambda _batch: build_task_graph(model)

    options = (workload.mode, workload.precision, workload.optimizer, workload.sync_input,
               workload.conv_algorithm, workload.input)

    def build(batch: int) -> OpGraph:
        graph: OpGraph | None = _graphs.get((model,), (batch, *options))
        if graph is None:
            graph = build_graph(model, batch, *options)
            _graphs.put((model,), (batch, *options), graph)
        return graph
    return build


# The graphs built last, by model and options (a sweep over devices, counts or links builds
# each graph once per process). Keyed by the model object, which is held beside its graph so
# that its id is not reused while the entry lives: load_model hands out one object per file,
# so catalog and file models hit; a model validated anew (inline, or with a seq_len) misses.
# Graphs are never changed after they are built (strategies read them; see Job).
_graphs = HeldCache(64)


def forget_built() -> None:
    """Empty the caches of what points build from their batch: graphs, resolved layers and
    layer costs (what a benchmark clears so that every run starts from cold points)."""
    _graphs.clear()
    forget_resolved()


def layers_factory(model: ModelDef | TaskGraph,
                   workload: Workload) -> Callable[[int], list[ResolvedLayer]]:
    if isinstance(model, TaskGraph):
        return lambda _batch: []  # no layers

    def layers(batch: int) -> list[ResolvedLayer]:
        return resolve_layers(model, batch, workload.conv_algorithm)
    return layers


def scenario_parts(scenario: Scenario) -> tuple[ModelDef | TaskGraph, Any]:
    return workload_model(scenario.workload), hardware_device(scenario.hardware)
