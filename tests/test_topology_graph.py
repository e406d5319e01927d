"""Topologies written as graphs in YAML (validated, routed by least time per byte) and
degraded or failed links, whose traffic goes round over what is left of the topology."""

from __future__ import annotations

import math

import pytest
import yaml
from cluster_helpers import link, refused_run

from hardware_models.ideal import IdealDevice
from hardware_models.topology import from_edges, with_link_faults
from simulator.api.predict import predict
from simulator.config.schema import load_experiment
from simulator.core.errors import UserError
from simulator.engine.loop import simulate
from simulator.parallel.comm_plan import collective_plan

STEP = {"batch": 16, "precision": "bf16"}


def _node(name: str, devices: int, intra: str, host: str | None, nics: int = 1) -> tuple:
    """A node as a built cluster makes it: a switch, NICs on the devices' host link (or
    free on the switch when the devices have no link of their own to them)."""
    devs = [f"{name}{i}" for i in range(devices)]
    nic_names = [f"{name}.nic{k}" for k in range(nics)]
    links = [[d, f"{name}.sw", intra] for d in devs]
    if host is None:
        links += [[f"{name}.sw", nic, "none"] for nic in nic_names]
    else:
        links += [[d, nic_names[i * nics // devices], host] for i, d in enumerate(devs)]
    links += [[nic, "spine", "ib-ndr"] for nic in nic_names]
    return {"name": name, "devices": devs, "switches": [f"{name}.sw"], "nics": nic_names}, links


def _graph(nodes: int, per_node: int, intra: str, host: str | None, nics: int = 1) -> dict:
    shapes = [_node(f"n{j}x", per_node, intra, host, nics) for j in range(nodes)]
    return {"nodes": [s[0] for s in shapes], "switches": ["spine"],
            "links": [item for s in shapes for item in s[1]]}


@pytest.mark.parametrize("device, intra, host, shape, options", [
    ("h100-sxm", "nvlink4", "pcie5-x16", (2, 4), {}),
    ("h100-sxm", "nvlink4", "pcie5-x16", (2, 4), {"nics_per_node": 2}),
    ("v100-sxm2", "pcie3-x16", None, (2, 2), {"collective": "allreduce_tree"}),
    ("h200", "nvlink4", "pcie5-x16", (1, 4), {}),
])
def test_a_graph_equal_to_a_built_cluster_gives_the_same_step(device, intra, host, shape,
                                                               options):
    from hardware_models.catalog_io import make_device

    if host is not None:
        assert make_device(device).host_link.name == host
    nodes, per_node = shape
    nics = options.get("nics_per_node", 1)
    built = predict("alexnet", device, devices=nodes * per_node, devices_per_node=per_node,
                    intra_link=intra, options=options or None, **STEP)
    rest = {k: v for k, v in options.items() if k != "nics_per_node"}
    graph = predict("alexnet", device, topology=_graph(nodes, per_node, intra, host, nics),
                    options={**rest, "simulate": "full"}, **STEP)
    assert built["simulated"] == graph["simulated"] == "full"
    assert graph["nodes"] == nodes and graph["devices"] == nodes * per_node
    assert (graph["intra_link"], graph["inter_link"]) == (built["intra_link"],
                                                          built["inter_link"])
    assert math.isclose(graph["step_time_s"], built["step_time_s"], rel_tol=1e-9)
    assert graph["communication_s"] == pytest.approx(built["communication_s"], rel=1e-9)


def _load(tmp_path, hardware: dict) -> None:
    data = {"title": "t", "scenarios": [{"name": "x", "workload": {"model": "alexnet",
                                                                    "batch": 1},
                                          "hardware": {"device": "h100-sxm", **hardware}}]}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    load_experiment(path)


PAIR = {"devices": ["g0", "g1"], "switches": ["sw"],
        "links": [["g0", "sw", "nvlink4"], ["g1", "sw", "nvlink4"]]}


@pytest.mark.parametrize("topology, words", [
    ({**PAIR, "links": [["g0", "sw", "warp-drive"], ["g1", "sw", "nvlink4"]]},
     "topology.links[0].link: unknown link 'warp-drive'"),
    ({**PAIR, "links": [["g0", "sw", "nvlink4"]]},
     "topology.links: device g1 is not connected to g0"),
    ({**PAIR, "switches": ["g1"]}, "topology.switches[0]: duplicate name 'g1' (also devices.1)"),
    ({**PAIR, "links": [["g0", "g0", "nvlink4"], *PAIR["links"]]},
     "topology.links[0].between: links g0 to itself"),
    ({**PAIR, "links": [*PAIR["links"], ["g9", "sw", "nvlink4"]]},
     "topology.links[2].between[0]: 'g9' is not a device, switch or NIC"),
    ({**PAIR, "links": [*PAIR["links"], ["sw", "g0", "pcie5-x16"]]},
     "topology.links[2].between: sw - g0 is already linked by links[0]"),
    ({**PAIR, "links": [["g0", "sw"], *PAIR["links"][1:]]},
     "topology.links[0]: a link is [A, B, LINK]"),
    ({"switches": ["sw"], "links": [["sw", "sw2", "nvlink4"]]},
     "topology.devices: a topology needs devices"),
])
def test_bad_graphs_are_one_line_naming_the_field(tmp_path, topology, words):
    with pytest.raises(UserError) as err:
        _load(tmp_path, {"topology": topology})
    message = str(err.value)
    assert words in message and "\n" not in message
    assert message.startswith(f"{tmp_path / 'x.yaml'}:")


@pytest.mark.parametrize("hardware, words", [
    ({"topology": PAIR, "count": 3}, "hardware.count: the topology has 2 devices, count is 3"),
    ({"topology": PAIR, "inter_link": "ib-ndr"}, "hardware.inter_link: inter_link does not apply"),
    ({"topology": PAIR, "link_faults": [{"between": ["g0", "g1"], "failed": True}]},
     "link_faults[0].between: the topology has no link between g0 and g1"),
    ({"link_faults": [{"between": ["d0", "n0.fabric"]}]},
     "link_faults[0].failed: give bandwidth_fraction (degraded, 0 to 1) or failed: true"),
    ({"link_faults": [{"between": ["d0", "n0.fabric"], "bandwidth_fraction": 1.5}]},
     "link_faults[0].bandwidth_fraction: must be less than 1"),
    ({"count": 2, "link_faults": [{"between": ["d7", "n0.fabric"], "failed": True}]},
     "link_faults[0].between[0]: device d7 is not in a cluster of 2"),
    ({"count": 2, "link_faults": [{"between": ["gpu0", "n0.fabric"], "failed": True}]},
     "link_faults[0].between[0]: 'gpu0' is not a vertex of a built cluster"),
    ({"count": 2, "link_faults": [{"between": ["d0", "n0.fabric"], "failed": True},
                                  {"between": ["n0.fabric", "d0"], "failed": True}]},
     "link_faults[1].between: this link is already listed at link_faults[0]"),
])
def test_bad_hardware_around_a_graph_or_a_fault_is_one_line(tmp_path, hardware, words):
    with pytest.raises(UserError) as err:
        _load(tmp_path, hardware)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_bad_graph_from_the_cli_exits_2_writing_nothing(tmp_path, cli):
    path, line = refused_run(cli, tmp_path, "      device: h100-sxm\n      topology:\n"
                             "        devices: [g0, g1]\n        links:\n"
                             "          - [g0, g1, nvlink9]\n")
    assert line == (f"error: {path}:10: scenarios[0].hardware.topology.links[0].link: unknown "
                    "link 'nvlink9'; valid link names: " + line.split("valid link names: ")[1])


def _ring(fault: tuple[str, str, float] | None = None, size: float = 64e6) -> float:
    """A ring all-reduce over four devices, each cabled to its two neighbours."""
    cable = link("cable", 10e9, 5e-6)
    names = ["a", "b", "c", "d"]
    topo = from_edges(names, [(names[i], names[(i + 1) % 4], cable) for i in range(4)])
    if fault is not None:
        topo = with_link_faults(topo, [fault])
    plan = collective_plan("allreduce_ring", topo, size, IdealDevice(), symmetric=False)
    return simulate(plan).end_s


def test_a_failed_link_on_a_ring_goes_round_slower_than_healthy_never_stuck():
    healthy, failed = _ring(), _ring(("a", "b", 0.0))
    assert healthy < failed < 10 * healthy  # the long way round: three hops' latency more
    # a link almost cut is not waited for: its traffic takes the same way round
    assert _ring(("a", "b", 1e-9)) == pytest.approx(failed, rel=1e-12)
    # half its bandwidth left, the link still carries the ring's step, at half the rate
    half = _ring(("a", "b", 0.5))
    assert half > healthy and half == pytest.approx(2 * healthy, rel=0.05)


def test_a_failed_link_that_cuts_a_device_off_is_one_line():
    cable = link("cable", 10e9)
    topo = from_edges(["a", "b", "c"], [("a", "b", cable), ("b", "c", cable)])
    with pytest.raises(UserError, match="^link_faults: device c is cut off from a: no route"):
        with_link_faults(topo, [("b", "c", 0.0)])
    with pytest.raises(UserError, match=r"^link_faults\[0\].between: the cluster has no link "
                                        "between a and c; a is linked to b$"):
        with_link_faults(topo, [("a", "c", 0.0)])


def _step(**hardware) -> dict:
    return predict("alexnet", "h100-sxm", devices=16, devices_per_node=8, **STEP,
                   options={"nics_per_node": 2, "simulate": "full"}, **hardware)


def test_a_training_step_reflects_failed_and_degraded_links_of_a_built_cluster():
    healthy = _step()["step_time_s"]
    nvlink = _step(link_faults=[{"between": ["d0", "n0.fabric"], "failed": True}])
    uplink = _step(link_faults=[{"between": ["n0.nic0", "spine"], "failed": True}])
    slow_ib = _step(link_faults=[{"between": ["n0.nic0", "spine"], "bandwidth_fraction": 0.1}])
    assert nvlink["simulated"] == "full"
    for faulty in (nvlink, uplink, slow_ib):
        assert healthy < faulty["step_time_s"] < 5 * healthy


def test_a_cluster_cut_in_two_is_one_line_from_the_cli(tmp_path, cli):
    path, line = refused_run(cli, tmp_path, "      device: h100-sxm\n      count: 16\n"
                             "      link_faults: [{between: [n0.nic0, spine], failed: true}]\n")
    assert line == (f"error: {path}:3: scenarios[0]: hardware.link_faults: device d8 is cut "
                    "off from d0: no route is left between them")


def test_forcing_the_symmetric_shortcut_on_a_degraded_cluster_is_refused():
    with pytest.raises(UserError, match="'symmetric' simulates one device for all, but the "
                                        "topology"):
        predict("alexnet", "h100-sxm", devices=16, **STEP, options={"simulate": "symmetric"},
                link_faults=[{"between": ["d0", "n0.fabric"], "bandwidth_fraction": 0.5}])


def test_the_link_fault_flag_is_the_yaml_field(cli):
    import json

    args = ["predict", "--model", "alexnet", "--hardware", "h100-sxm", "--devices", "16",
            "--batch", "16", "--precision", "bf16", "--json"]
    proc = cli(*args, "--link-fault", "d0,n0.fabric=failed", "--link-fault",
               "n1.nic0,spine=0.5")
    assert proc.returncode == 0, proc.stderr
    faults = [{"between": ["d0", "n0.fabric"], "failed": True},
              {"between": ["n1.nic0", "spine"], "bandwidth_fraction": 0.5}]
    same = predict("alexnet", "h100-sxm", devices=16, link_faults=faults, **STEP)
    assert json.loads(proc.stdout)["step_time_s"] == same["step_time_s"]
    for bad, words in [("d0=0.5", "--link-fault: expected A,B=FRACTION or A,B=failed"),
                       ("d0,n0.fabric=0", "--link-fault (hardware.link_faults.0."
                                          "bandwidth_fraction): must be greater than 0")]:
        proc = cli(*args, "--link-fault", bad)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.strip().startswith(f"error: {words}") and proc.stderr.count("\n") == 1
    proc = cli("predict", "--collective", "allreduce", "--bytes", "1e6", "--hardware", "h100-sxm",
               "--devices", "16", "--link-fault", "d0,n0.fabric=failed")
    assert proc.returncode == 2 and "--link-fault: a step's option" in proc.stderr


def test_routes_round_faults_of_a_built_cluster_are_paths_of_least_time():
    import networkx as nx

    from hardware_models.topology import build_cluster

    nvlink, ib, pcie = link("nv", 300e9), link("ib", 50e9), link("pcie", 60e9)
    faults = [("d0", "n0.fabric", 0.0), ("n1.nic1", "spine", 0.3), ("d5", "n1.nic0", 0.0),
              ("d9", "n2.fabric", 0.5)]
    topo = with_link_faults(build_cluster(3, 4, nvlink, ib, pcie, nics_per_node=2), faults)
    assert topo.structured  # routes by formula, searched only round a fault

    def weight(u: str, v: str, data: dict) -> float:
        return 0.0 if data["link"] is None else 1.0 / data["link"].bandwidth_bytes_per_s

    for a in range(topo.size):
        for b in range(topo.size):
            if a == b:
                continue
            cost = sum(1.0 / topo.bandwidth_bytes_per_s(c) for c in topo.route(a, b))
            best = nx.shortest_path_length(topo.graph, topo.devices[a], topo.devices[b],
                                           weight=weight)
            assert cost == pytest.approx(best, rel=1e-12), (a, b, topo.route(a, b))
    assert "d0>n0.fabric" not in {c for b in range(1, 12) for c in topo.route(0, b)}


@pytest.mark.parametrize("strategy", ["data", "model", "pipeline", "parameter_server"])
def test_every_strategy_runs_on_a_graph_of_loose_devices(strategy):
    """Four GPUs cabled in a ring, no nodes (each a node of its own): every strategy that
    cuts a network runs over the graph's routes, with a cable failed too."""
    from simulator.api.build import hardware_device, hardware_topology
    from simulator.config.request import scenario_request

    ring = {"devices": ["a", "b", "c", "d"],
            "links": [["a", "b", "nvlink4"], ["b", "c", "nvlink4"], ["c", "d", "nvlink4"],
                      ["d", "a", "nvlink4"]]}
    cut = [{"between": ["a", "b"], "failed": True}]
    for faults in ([], cut):
        result = predict("alexnet", "h100-sxm", topology=ring, parallel=strategy, batch=8,
                         precision="bf16", link_faults=faults)
        assert result["nodes"] == 4 and result["simulated"] == "full"
        assert 0 < result["step_time_s"] < math.inf
    hardware = scenario_request("alexnet", "h100-sxm", topology=ring, link_faults=cut).hardware
    topo = hardware_topology(hardware, hardware_device(hardware))
    assert topo.route(0, 1) == ("a>d", "d>c", "c>b")  # the long way round
    assert topo.route(0, 2) == ("a>d", "d>c")  # the one way that is left
