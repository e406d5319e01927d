"""Costs as users pay them (docs/costs.md): whole-cluster hardware cost, cloud cost at the
cheapest offer that holds a node, power by utilisation; the catalog file's entries."""

from __future__ import annotations

import math

import pytest

from hardware_models.costs import cost_catalog, server_for
from simulator.api.predict import predict_full
from simulator.config.request import scenario_request
from simulator.results.costs import network_cost
from simulator.results.scenario import scenario_row


def row_of(model: str, device: str, **options) -> dict:
    scenario = scenario_request(model, device, **options)
    return scenario_row(scenario, predict_full(model, device, **options))


def test_sixteen_h100_in_two_servers_with_their_network():
    row = row_of("mlp", "h100-sxm", batch=64, devices=16, devices_per_node=8,
                 inter_link="ib-ndr")
    # 2 x (server 77,000 + 8 x 30,000) + 16 NICs x (1 port 562.5 + 1 cable 810)
    assert row["network_cost_usd"] == pytest.approx(16 * (562.5 + 810.0))
    assert row["hardware_cost_usd"] == pytest.approx(2 * (77_000 + 8 * 30_000) + 21_960)
    assert row["servers"] == 2 and "hgx-h100-8gpu" in row["hardware_cost_basis"]


def test_fat_tree_levels_grow_with_the_nics():
    one = network_cost(8, 8, "ib-ndr")  # 64 NICs: one switch
    two = network_cost(9, 8, "ib-ndr")  # 72 NICs: leaves and spines, 3 ports + 2 cables
    assert one == pytest.approx(64 * (562.5 + 810.0))
    assert two == pytest.approx(72 * (3 * 562.5 + 2 * 810.0))
    assert network_cost(1, 8, "ib-ndr") == 0.0
    assert network_cost(2, 8, "eth-1g") is None  # not priced: unknown, not free


def test_unpriced_network_leaves_the_cost_unknown_and_a_system_price_counts_once():
    row = row_of("mlp", "a100-sxm4", batch=64, devices=16, inter_link="ib-hdr")
    assert row["hardware_cost_usd"] is None and "network not priced" in row["hardware_cost_basis"]
    single = row_of("mlp", "a100-sxm4", batch=64, devices=8)
    assert single["hardware_cost_usd"] == 199_000.0  # DGX A100, GPUs included


def test_a_device_without_a_server_counts_itself():
    row = row_of("mlp", "gtx-1080", batch=32)
    assert row["hardware_cost_usd"] == 599.0 and row["servers"] is None
    assert row["hardware_cost_basis"].startswith("devices only")


def test_cloud_cost_takes_the_cheapest_offer_that_holds_a_node():
    one = row_of("mlp", "h100-sxm", batch=64, **{"devices": 1})
    eight = row_of("mlp", "h100-sxm", batch=64, devices=8)
    for row in (one, eight):
        assert row["cloud_cost_usd"] is None  # no dataset: no hours to rent
    scenario = scenario_request("mlp", "h100-sxm", batch=64, devices=8)
    scenario = scenario.model_copy(update={"workload": scenario.workload.model_copy(
        update={"dataset_size": 1_000_000})})
    from simulator.api.predict import predict_scenario

    row = scenario_row(scenario, predict_scenario(scenario))
    hours = row["time_to_train_s"] / 3600
    assert row["cloud_cost_usd"] == pytest.approx(98.32 * hours)  # 1-GPU instances cannot
    assert row["cloud_offer"].startswith("AWS p5.48xlarge")      # hold an 8-GPU node


def test_power_follows_utilisation_and_the_pue():
    row = row_of("vgg16", "h100-sxm", batch=64, devices=8)
    parts, step = row["breakdown"], row["step_time_s"]
    busy = 1 - (parts["idle"] + parts["launch"]) / step
    host = server_for("h100-sxm")[1].host_peak_w
    expected = 8 * (70 + 630 * busy) + (0.1 * host + 0.9 * host * busy)
    assert row["power_w"] == pytest.approx(expected)
    assert row["power_peak_w"] == pytest.approx(8 * 700 + host)
    assert row["energy_j"] == pytest.approx(row["power_w"] * step)
    assert row["power_w"] < row["power_peak_w"]
    from simulator.api.predict import predict_scenario

    scenario = scenario_request("vgg16", "h100-sxm", batch=64, devices=8)
    site = scenario.model_copy(update={"hardware": scenario.hardware.model_copy(
        update={"pue": 1.58})})
    assert scenario_row(site, predict_scenario(site))["power_w"] == pytest.approx(
        1.58 * row["power_w"])


def test_catalog_entries_are_sourced_and_dated():
    catalog = cost_catalog()
    assert catalog.collected and catalog.energy.sources
    for server in catalog.servers.values():
        assert server.sources and (server.price_usd or server.system_price_usd)
    for offers in catalog.cloud.values():
        assert all(o.source and o.date and math.isfinite(o.usd_per_hour) for o in offers)


def test_every_catalog_device_without_a_price_says_why():
    from hardware_models.catalog_io import _device_files, device_names, load_spec
    from simulator.core.yaml_source import parse_yaml_text

    unpriced = [name for name in device_names() if getattr(load_spec(name), "price_usd", None)
                is None]
    assert {"i7-10510u", "i7-10700", "h100-pcie", "940mx", "gt-740m"} <= set(unpriced)
    for name in unpriced:
        path, where = _device_files()[name]
        data = parse_yaml_text(path.read_text(), where, "a device").data
        notes = [n for n in data.get("assumptions", []) if n.startswith("No price")]
        assert notes, f"{where}: no price_usd and no 'No price' note saying why"


def test_a_device_without_a_price_is_unknown_not_free_and_the_sweep_says_so(tmp_path, capsys):
    import json

    from simulator.__main__ import main

    row = row_of("mlp", "i7-10700", batch=8)
    assert row["hardware_cost_usd"] is None and row["samples_per_s_per_usd"] is None
    assert row["hardware_cost_basis"] == "not priced: no published price for i7-10700"
    path = tmp_path / "prices.yaml"
    path.write_text("title: prices\nsweep:\n  base:\n    workload: {model: mlp, batch: 8}\n"
                    "    hardware: {device: gtx-1080}\n  grid:\n"
                    "    hardware.device: [i7-10700, gtx-1080, 940mx]\n"
                    "  objectives: [hardware_cost_usd, samples_per_s_per_usd]\n")
    assert main(["sweep", str(path), "--workers", "1", "--quick", "--out",
                 str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "lowest hardware_cost_usd: $599 at point 1 (device=gtx-1080)" in out
    assert "samples/s per $ at point 1" in out  # a rate, not dollars
    assert ("left out of hardware_cost_usd: 2 points without one (940mx, i7-10700; "
            "no published price") in out
    summary = json.loads((tmp_path / "out" / "results.json").read_text())["summary"]
    assert summary["unknown"]["hardware_cost_usd"]["points"] == 2
    assert summary["unknown"]["hardware_cost_usd"]["hardware"] == ["940mx", "i7-10700"]
    assert [p["index"] for p in summary["pareto"]["step_time_s_vs_hardware_cost_usd"]["points"]] \
        == [1]


def test_left_out_points_are_told_apart_by_why_they_have_no_cost():
    """Regression: nodes over a link without network prices ('(network not priced)') were
    reported as devices without a published price."""
    from simulator.cli.sweep_cmd import summary_text

    summary = {"points": 3, "ok": 3, "out_of_memory": 0, "failed": 0, "feasible": 3,
               "best": {"hardware_cost_usd": None},
               "unknown": {"hardware_cost_usd": {"points": 2, "hardware": ["h100-sxm"],
                                                 "why": ["2 x hgx-h100-8gpu (network not "
                                                         "priced)"]}}}
    text = summary_text(summary)
    assert "network between nodes is not priced" in text and "no published price" not in text
    summary["unknown"]["hardware_cost_usd"]["why"].append(
        "not priced: no published price for i7-10700")
    text = summary_text(summary)
    assert "network between nodes is not priced" in text and "no published price" in text
