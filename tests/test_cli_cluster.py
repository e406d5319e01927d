"""`predict` for many devices and for one collective, as a user runs it: the JSON contract,
nccl-tests' bandwidths, defaults, and bad input (one line, exit 2)."""

from __future__ import annotations

import json

import pytest

DP = ["--model", "vgg16", "--hardware", "h200", "--devices", "2", "--devices-per-node", "2",
      "--intra-link", "nvlink4", "--parallel", "data", "--batch", "64", "--precision", "bf16",
      "--mode", "train", "--json"]
ALLREDUCE = ["--collective", "allreduce", "--bytes", "268435456", "--hardware", "h200",
             "--devices", "2", "--devices-per-node", "2", "--intra-link", "nvlink4", "--json"]


def test_data_parallel_json_contract(cli):
    out = cli("predict", *DP)
    assert out.returncode == 0, out.stderr
    multi = json.loads(out.stdout)
    single = json.loads(cli("predict", *DP[:2], *DP[2:4], *DP[10:]).stdout)
    assert set(single) <= set(multi)
    assert multi["devices"] == 2 and multi["cores"] == 2 * single["cores"]
    assert 0 < multi["communication_s"] and 0 < multi["scaling_efficiency"] <= 1
    assert multi["scaling_efficiency"] == pytest.approx(
        multi["samples_per_s"] / (2 * single["samples_per_s"]))
    assert multi["samples_per_s"] == pytest.approx(2 * 64 / multi["step_time_s"])


def test_allreduce_alone_reports_time_and_bus_bandwidth(cli):
    out = cli("predict", *ALLREDUCE)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    n, size = 2, 268435456
    algbw = size / result["time_s"]
    assert result["bus_bandwidth_bytes_per_s"] == pytest.approx(algbw * 2 * (n - 1) / n)
    # two H200s over NVLink4: a little under the link's achievable rate (its line rate, 450
    # GB/s per direction, times the efficiency calibrated from measured NCCL all-reduces)
    from hardware_models.catalog_io import load_link

    achievable = load_link("nvlink4").bandwidth_bytes_per_s
    assert 0.85 * achievable < result["bus_bandwidth_bytes_per_s"] < achievable <= 450e9


def test_defaults_nvlink_inside_8_gpu_nodes_ib_ndr_between(cli):
    out = cli("predict", "--collective", "allreduce", "--bytes", "1e8", "--hardware", "h200",
              "--devices", "16", "--json")
    result = json.loads(out.stdout)
    assert (result["devices_per_node"], result["nodes"]) == (8, 2)
    assert (result["intra_link"], result["inter_link"]) == ("nvlink4", "ib-ndr")
    pcie = json.loads(cli("predict", "--collective", "allreduce", "--bytes", "1e8", "--hardware",
                          "gtx-1080", "--devices", "4", "--json").stdout)
    assert pcie["intra_link"] == "pcie3-x16" and pcie["inter_link"] is None


def test_table_output_and_same_bytes_twice(cli):
    table = cli("predict", *DP[:-1])
    assert table.returncode == 0 and "scaling eff." in table.stdout
    assert cli("predict", *DP).stdout == cli("predict", *DP).stdout


@pytest.mark.parametrize("args, words", [
    (["--collective", "allreduce", "--devices", "2"], ["--collective needs --bytes"]),
    (["--collective", "allreduce", "--bytes", "0", "--devices", "2"], ["--bytes", "positive"]),
    (["--collective", "allreduce", "--bytes", "-5", "--devices", "2"], ["--bytes", "positive"]),
    (["--collective", "allreduce", "--bytes", "inf", "--devices", "2"], ["--bytes", "finite"]),
    (["--collective", "allreduce", "--bytes", "nan", "--devices", "2"], ["--bytes", "finite"]),
    (["--model", "vgg16", "--option", "micro_batches"], ["--option", "KEY=VALUE"]),
    (["--model", "vgg16", "--devices", "6", "--devices-per-node", "4"], ["multiple of"]),
    (["--model", "vgg16", "--devices", "2", "--intra-link", "nvlink9"],
     ["--intra-link", "nvlink9"]),
    (["--model", "vgg16", "--devices", "16", "--inter-link", "ib-xdr"], ["--inter-link", "ib-xdr"]),
    (["--model", "vgg16", "--devices", "2", "--parallel", "magic"], ["parallel", "magic", "data"]),
    (["--collective", "allring", "--bytes", "8", "--devices", "2"], ["collective", "allreduce"]),
    (["--model", "vgg16", "--devices", "2", "--bytes", "8"], ["--bytes", "--collective"]),
    (["--model", "vgg16", "--devices", "0"], ["--devices"]),
    (["--model", "vgg16", "--devices", "2", "--devices-per-node", "0"], ["--devices-per-node"]),
])
def test_bad_cluster_input_is_one_line_exit_2(cli, args, words):
    out = cli("predict", "--hardware", "h200", *args)
    assert out.returncode == 2, out.stdout
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error:")
    for word in words:
        assert word in out.stderr


def test_out_of_memory_cluster_exits_3(cli):
    out = cli("predict", "--model", "vgg16", "--hardware", "gt-740m", "--devices", "2",
              "--batch", "256", "--json")
    assert out.returncode == 3
    assert json.loads(out.stdout)["status"] == "out_of_memory"
