"""Collectives as NCCL runs them: NCCL's tuning constants (src/graph/tuning.cc), the library's
choice of algorithm and protocol per size, a forced protocol, the small-message floor, and the
physical invariant that a faster interconnect is never slower, for any size and device count."""

from __future__ import annotations

import json

import pytest
from cluster_helpers import cluster, link

from hardware_models.catalog_io import load_link, make_device
from hardware_models.ideal import IdealDevice
from hardware_models.topology import build_cluster
from simulator.api.cluster import predict_collective
from simulator.core.errors import UserError
from simulator.engine.loop import simulate
from simulator.engine.plan import Plan
from simulator.parallel.comm_plan import CommPlanner, collective_plan
from simulator.parallel.nccl import PROTOCOLS, check_protocol, nccl

US = 1e-6
SIZES = [8 * 4**k for k in range(15)] + [2**32]  # 8 B .. 4 GiB
DEVICES = range(2, 17)


def _per_node(n: int) -> int:
    """8 GPUs a node as on HGX boards, or equal smaller nodes (one GPU a node for primes)."""
    return next(m for m in (8, 7, 6, 5, 4, 3, 2, 1) if n % m == 0 and m <= n)


def _time(size: float, n: int, intra: str, hardware: str = "h100-sxm", **options) -> float:
    result, _ = predict_collective("allreduce", size, make_device(hardware), devices=n,
                                   devices_per_node=_per_node(n), intra_link=intra,
                                   inter_link="ib-ndr", options=options)
    return float(result["time_s"])


def test_constants_are_nccls():
    model = nccl()
    assert model.base_latency_us.ring == {"LL": 6.6, "LL128": 14.0, "Simple": 8.4}
    assert model.base_latency_us.tree == {"LL": 6.8, "LL128": 14.0, "Simple": 8.4}
    assert model.hop_latency_us.nvlink.ring == {"LL": 0.6, "LL128": 1.9, "Simple": 3.4}
    assert model.hop_latency_us.pci.ring == {"LL": 1.0, "LL128": 2.5, "Simple": 5.7}
    assert model.hop_latency_us.net.tree == {"LL": 5.0, "LL128": 8.5, "Simple": 14.0}
    assert model.factor("ring", "LL", True) == 0.5  # half of each 8-byte word is a flag
    assert model.factor("ring", "LL128", True) == 0.92  # NCCL's figure for 120/128
    assert model.factor("ring", "Simple", True) == 1.0
    assert model.factor("tree", "LL128", True) == pytest.approx(0.92 * 7 / 9)
    assert model.factor("tree", "LL128", False) == pytest.approx(0.92 * 120 / 128)
    assert all(model.reference_route_latency_us[k] > 0 for k in ("nvlink", "pci", "net"))


def test_small_messages_at_nccls_latency_floor():
    # ring LL: 6.6 us + 2(n-1) x 0.6 us over NVLink (the harness's 44.7 us per step is gone)
    assert _time(1024, 2, "nvlink4", "h200") == pytest.approx(7.8 * US, rel=0.02)
    assert _time(1024, 8, "nvlink4", "h200") == pytest.approx(15.0 * US, rel=0.02)
    assert _time(8192, 8, "nvlink4", "h200") < 16 * US
    assert _time(1024, 16, "nvlink4", "h200") < 30 * US  # two nodes: a tree over the network


@pytest.mark.parametrize("n", [2, 8])
def test_forced_protocols_order_as_nccls(n):
    small = {p: _time(1024, n, "nvlink4", protocol=p) for p in PROTOCOLS}
    large = {p: _time(2**30, n, "nvlink4", protocol=p) for p in PROTOCOLS}
    assert min(small, key=small.get) == "LL"
    assert min(large, key=large.get) == "Simple"
    assert large["LL"] / large["Simple"] == pytest.approx(2.0, rel=0.02)  # LL: half the bandwidth
    assert large["LL128"] / large["Simple"] == pytest.approx(1 / 0.92, rel=0.02)
    for size in (1024, 2**20, 2**30):  # the automatic choice is never slower than a forced one
        auto = _time(size, n, "nvlink4")
        assert auto <= min(_time(size, n, "nvlink4", protocol=p) for p in PROTOCOLS) * (1 + 1e-9)


def test_protocol_option_reaches_the_plan_from_the_cli(cli):
    args = ["predict", "--collective", "allreduce", "--bytes", "1073741824", "--hardware", "h200",
            "--devices", "2", "--json"]
    auto = json.loads(cli(*args).stdout)["time_s"]
    ll = cli(*args, "--option", "protocol=LL")
    assert ll.returncode == 0, ll.stderr
    assert json.loads(ll.stdout)["time_s"] > 1.8 * auto
    bad = cli(*args, "--option", "protocol=fast")
    assert bad.returncode == 2 and "protocol" in bad.stderr and "LL128" in bad.stderr
    typo = cli(*args, "--option", "protocl=LL")
    assert typo.returncode == 2 and "unknown key 'protocl'" in typo.stderr


def test_protocol_names_are_checked():
    assert check_protocol("ll128") == "LL128" and check_protocol(None) is None
    with pytest.raises(UserError, match="protocol"):
        check_protocol("LL256")


def test_choice_follows_size_as_nccls():
    # 2 GPUs over NVLink: LL while its lower latency wins, Simple from a few MiB on
    topo = build_cluster(1, 2, load_link("nvlink4"), None)
    planner = CommPlanner(Plan(devices=[IdealDevice()] * 2), topo, {0: 0, 1: 1})
    chosen = {s: planner.choose("allreduce", [0, 1], s) for s in (1024, 2**20, 2**24, 2**30)}
    assert [v.protocol for _, v in chosen.values()] == ["LL", "LL", "Simple", "Simple"]
    assert {run for run, _ in chosen.values()} == {"allreduce_ring"}
    # 64 nodes of one GPU: the tree's log-depth latency wins on small messages
    wide = cluster(64, 1)
    planner = CommPlanner(Plan(devices=[IdealDevice()]), wide, {0: 0}, symmetric=True)
    assert planner.choose("allreduce", list(range(64)), 8)[0] == "allreduce_tree"


def test_parameter_server_messages_keep_the_links_latency():
    topo = cluster(3, 1, latency_s=5e-6)  # each push crosses the network: 4 half-latency hops
    t = simulate(collective_plan("ps_push", topo, 8, IdealDevice(), False)).end_s
    assert t == pytest.approx(2 * 5e-6, rel=1e-3)


def test_slow_links_pay_their_excess_latency():
    fast, slow = link("eth-fast", 12.5e9, 2e-6), link("eth-slow", 12.5e9, 50e-6)
    intra = load_link("nvlink4")
    t_fast = simulate(collective_plan("allreduce", build_cluster(4, 1, intra, fast), 8,
                                      IdealDevice(), False)).end_s
    t_slow = simulate(collective_plan("allreduce", build_cluster(4, 1, intra, slow), 8,
                                      IdealDevice(), False)).end_s
    assert t_slow > t_fast + 4 * 48e-6  # at least 2 log2(4) network hops of 48 us more


@pytest.mark.parametrize("n", list(DEVICES))
def test_a_faster_interconnect_is_never_slower(n):
    # nvlink4 (more bandwidth than nvlink3, both NVLink's latencies) <= nvlink3 <= PCIe 5
    # (PCIe's latencies) <= PCIe 4 <= PCIe 3, for every size from 8 B to 4 GiB
    links = ("nvlink4", "nvlink3", "pcie5-x16", "pcie4-x16", "pcie3-x16")
    for size in SIZES:
        times = [_time(size, n, name) for name in links]
        for i in range(len(links) - 1):
            assert times[i] <= times[i + 1] * (1 + 1e-9), (n, size, links[i], links[i + 1])


@pytest.mark.parametrize("nodes, per_node", [(1, 2), (1, 5), (1, 8), (2, 8), (16, 1), (3, 4)])
def test_more_bandwidth_or_less_latency_is_never_slower(nodes, per_node):
    def time_s(intra_bw: float, inter_bw: float, latency: float, size: float) -> float:
        topo = cluster(nodes, per_node, intra_bw, inter_bw, latency)
        symmetric = nodes * per_node > 8
        return simulate(collective_plan("allreduce", topo, size, IdealDevice(), symmetric)).end_s

    for size in SIZES[::2]:
        base = time_s(100e9, 10e9, 3e-6, size) * (1 + 1e-9)
        assert time_s(200e9, 10e9, 3e-6, size) <= base
        assert time_s(100e9, 20e9, 3e-6, size) <= base
        assert time_s(100e9, 10e9, 1e-6, size) <= base
