"""Mixed clusters: device groups of several kinds in one data-parallel job, simulated device
by device, the slowest kind setting the pace; memory checked per kind; bad mixes refused."""

from __future__ import annotations

import math

import pytest
import yaml
from cluster_helpers import refused_run

from simulator.api.predict import predict
from simulator.config.request import scenario_request
from simulator.config.schema import load_experiment
from simulator.core.errors import UserError
from simulator.results.faults import device_mtbf_hours

STEP = {"batch": 16, "precision": "bf16"}
MIX = [{"device": "h100-sxm", "count": 4}, {"device": "a100-sxm4", "count": 4}]


def _alone(device: str, **extra) -> dict:
    return predict("alexnet", device, devices=8, devices_per_node=4, **STEP, **extra)


def test_the_slowest_kind_sets_the_pace_of_a_mixed_data_parallel_step():
    mixed = predict("alexnet", None, groups=MIX, **STEP)
    fast, slow = _alone("h100-sxm"), _alone("a100-sxm4")
    assert mixed["simulated"] == "full" and mixed["devices"] == 8 and mixed["nodes"] == 2
    assert mixed["hardware"] == "4x h100-sxm + 4x a100-sxm4"
    assert fast["step_time_s"] < slow["step_time_s"]
    assert mixed["step_time_s"] > fast["step_time_s"] * 1.05  # held up by the A100s
    assert mixed["step_time_s"] <= slow["step_time_s"] * (1 + 1e-9)  # never below their pace
    assert mixed["memory_capacity_bytes"] == 40e9  # the smaller kind's


def test_a_mix_of_one_kind_is_the_cluster_of_that_kind():
    one_kind = [{"device": "h100-sxm", "count": 4}, {"device": "h100-sxm", "count": 4}]
    same = predict("alexnet", None, groups=one_kind, **STEP)
    assert same["step_time_s"] == pytest.approx(_alone("h100-sxm")["step_time_s"], rel=1e-9)
    assert same["hardware"] == "h100-sxm"


def test_one_slower_kind_among_many_holds_up_the_step():
    groups = [{"device": "h100-sxm", "count": 7, "devices_per_node": 7},
              {"device": "v100-sxm2", "count": 1}]
    mixed = predict("alexnet", None, groups=groups, **STEP)
    v100 = predict("alexnet", "v100-sxm2", **STEP)
    assert mixed["step_time_s"] > v100["step_time_s"]  # its compute, then the all-reduce
    # the efficiency is over what every device would do alone: the H100s' idle time counts
    assert 0 < mixed["scaling_efficiency"] < 0.5


def test_memory_is_checked_for_every_kind_and_the_error_names_the_short_one():
    groups = [{"device": "h100-sxm", "count": 2}, {"device": "gtx-1080", "count": 2}]
    result = predict("vgg16", None, groups=groups, batch=256)
    assert result["status"] == "out_of_memory"
    assert "gtx-1080 has 8.00 GB" in result["error"]
    fits = predict("vgg16", None, groups=groups, batch=result["largest_batch_that_fits"])
    assert fits.get("status") != "out_of_memory" and fits["step_time_s"] > 0


def _load(tmp_path, hardware: dict) -> None:
    data = {"title": "t", "scenarios": [{"name": "x", "workload": {"model": "alexnet",
                                                                    "batch": 1},
                                          "hardware": hardware}]}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    load_experiment(path)


@pytest.mark.parametrize("hardware, words", [
    ({"groups": MIX, "device": "h100-sxm"}, "hardware.device: give the devices as groups"),
    ({"groups": MIX, "count": 8}, "hardware.count: give the devices as groups"),
    ({"groups": [{"device": "a1000", "count": 4}]},
     "hardware.groups[0].device: unknown hardware 'a1000'"),
    ({"groups": [{"device": "h100-sxm", "count": 6, "devices_per_node": 4}]},
     "groups[0].devices_per_node: count (6) must be a multiple of devices_per_node (4)"),
    ({"groups": []}, "hardware.groups: must have at least 1 item"),
    ({"groups": [{"device": "h100-sxm", "count": 131072}, {"device": "a100-sxm4", "count": 8}]},
     "hardware.groups: at most 131072 devices in all, got 131080"),
    ({"groups": [{"device": "h100-sxm", "count": 4, "intra_link": "warp"}]},
     "hardware.groups[0].intra_link: unknown link 'warp'"),
])
def test_bad_groups_are_one_line_naming_the_field(tmp_path, hardware, words):
    with pytest.raises(UserError) as err:
        _load(tmp_path, hardware)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(f"{tmp_path / 'x.yaml'}:")


@pytest.mark.parametrize("strategy", ["pipeline", "model", "parameter_server"])
def test_a_strategy_that_cannot_mix_is_refused_naming_the_one_that_can(strategy):
    with pytest.raises(UserError, match=f"strategy '{strategy}' cannot run on a mix of device "
                                        "kinds .4x h100-sxm \\+ 4x a100-sxm4.; use data"):
        scenario_request("alexnet", None, groups=MIX, parallel=strategy)


def test_the_file_error_names_the_file_line_and_field(tmp_path, cli):
    path, line = refused_run(cli, tmp_path, "      groups:\n"
                             "        - {device: h100-sxm, count: 4}\n"
                             "        - {device: a1000, count: 4}\n")
    assert line.startswith(f"error: {path}:8: scenarios[0].hardware.groups[1].device: unknown")


def test_rates_of_a_mix_add_in_the_fault_model():
    scenario = scenario_request("alexnet", None, groups=MIX, **STEP)
    scenario = scenario.model_copy(update={"faults": None})
    from simulator.config.schema import Faults

    mtbf_h = device_mtbf_hours(scenario, Faults())
    h100, a100 = 16384 * 54 * 24 / 419, 29538.0  # hardware_models/catalog/failures.yaml
    assert mtbf_h == pytest.approx(8 / (4 / h100 + 4 / a100), rel=1e-3)
    assert min(h100, a100) < mtbf_h < max(h100, a100)


def test_the_example_file_names_the_mix_and_leaves_its_price_unknown():
    from simulator.api.experiment import run_experiment

    experiment = load_experiment("experiments/heterogeneous_cluster.yaml")
    rows = {run.row["name"]: run.row for run in run_experiment(experiment)}
    mixed = rows["4 H100 + 4 A100"]
    assert mixed["hardware"] == "4x h100-sxm + 4x a100-sxm4"
    assert mixed["hardware_cost_usd"] is None and "mixed cluster" in mixed["hardware_cost_basis"]
    assert mixed["cores"] == 4 * 16896 + 4 * 6912
    assert math.isclose(mixed["step_time_s"], rows["8 A100"]["step_time_s"], rel_tol=0.01)


def test_a_graph_whose_nodes_name_their_kinds_is_the_mix_of_groups():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "experiments.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
                 if "a.nvswitch" in b)
    hardware = yaml.safe_load(block)["hardware"]
    graph = predict("alexnet", hardware["device"], topology=hardware["topology"], **STEP)
    groups = predict("alexnet", None, **STEP, groups=[{"device": "h100-sxm", "count": 2},
                                                      {"device": "a100-sxm4", "count": 2}])
    assert graph["hardware"] == groups["hardware"] == "2x h100-sxm + 2x a100-sxm4"
    assert math.isclose(graph["step_time_s"], groups["step_time_s"], rel_tol=1e-9)


def test_the_timeline_names_each_kind_of_a_mix(tmp_path):
    import json

    from simulator.cli.main import main
    from simulator.report.plot_timeline import device_lanes

    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({"title": "t", "scenarios": [
        {"name": "mix", "workload": {"model": "alexnet", **STEP}, "hardware": {"groups": MIX}},
        {"name": "one", "workload": {"model": "alexnet", **STEP},
         "hardware": {"device": "h100-sxm", "count": 8, "devices_per_node": 4}}]}))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quick"]) == 0
    mix, one = json.loads((tmp_path / "out" / "figure-data.json").read_text())["scenarios"]
    assert mix["device_kinds"] == ["h100-sxm"] * 4 + ["a100-sxm4"] * 4
    labels = [lane.label for lane in device_lanes(mix, 14)[0]]
    assert "dev 4-7 (a100-sxm4): compute" in labels and "dev 0-3 (h100-sxm): compute" in labels
    assert "device_kinds" not in one  # one kind: the lanes as before
    assert not any("(h100-sxm)" in lane.label for lane in device_lanes(one, 14)[0])
