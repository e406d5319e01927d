"""One prediction path: the CLI, the Python API and an experiment file give the same numbers
for the same request; every workload option reaches the multi-device path; `batch` means
samples per device for every strategy; the parameter servers' work is in the engine."""

from __future__ import annotations

import json

import pytest
from cluster_helpers import cluster

from hardware_models.catalog_io import make_device
from simulator.api.experiment import run_experiment
from simulator.api.predict import predict, predict_on
from simulator.config.schema import load_experiment
from simulator.core.errors import UserError


def test_framework_and_conv_algorithm_reach_the_multi_device_path():
    # regression: VGG16 on 2 x h100-sxm gave 4.9007 ms with pytorch and with numpy
    step = {fw: predict("vgg16", "h100-sxm", batch=16, devices=2, framework=fw)["step_time_s"]
            for fw in ("pytorch", "numpy")}
    assert step["pytorch"] != step["numpy"]
    im2col = predict("vgg16", "h100-sxm", batch=16, devices=2, conv_algorithm="im2col")
    assert im2col["step_time_s"] != step["pytorch"]
    single = {fw: predict("vgg16", "h100-sxm", batch=16, framework=fw)["step_time_s"]
              for fw in ("pytorch", "numpy")}
    assert (step["numpy"] > step["pytorch"]) == (single["numpy"] > single["pytorch"])


def test_sync_input_reaches_the_multi_device_path():
    # a batch large enough that its copy is not hidden behind the first launches
    prefetch = predict("resnet50", "h200", batch=128, devices=2, mode="infer")
    synced = predict("resnet50", "h200", batch=128, devices=2, mode="infer", sync_input=True)
    assert synced["step_time_s"] > prefetch["step_time_s"]


@pytest.mark.parametrize("parallel, devices", [("data", 4), ("model", 4), ("pipeline", 4),
                                               ("single", 1)])
def test_batch_is_per_device_for_every_strategy(parallel, devices):
    result = predict("alexnet", "h200", batch=8, devices=devices, parallel=parallel)
    assert result["global_batch"] == 8 * devices and result["batch"] == 8
    assert result["samples_per_s"] == pytest.approx(8 * devices / result["step_time_s"])


def test_global_batch_is_the_same_request_as_its_per_device_batch():
    by_device = predict("alexnet", "h200", batch=8, devices=4)
    by_cluster = predict("alexnet", "h200", global_batch=32, devices=4)
    assert by_cluster == by_device


def test_global_batch_must_divide_among_replicas():
    with pytest.raises(UserError, match="global_batch"):
        predict("alexnet", "h200", global_batch=30, devices=4)


def test_pipeline_default_micro_batches_follow_gpipe():
    # regression: VGG16 bf16 batch 32 on 8 H100s ran micro-batches of 1 sample (4.9% efficiency)
    result = predict("vgg16", "h100-sxm", batch=32, precision="bf16", devices=8,
                     parallel="pipeline")
    assert result["micro_batches"] == 32 and result["global_batch"] == 256
    assert result["scaling_efficiency"] > 0.2


def test_parameter_server_updates_are_tasks_of_the_engine():
    # regression: the servers' update time was added to the step after the simulation
    topo = cluster(5, 1, 1e15, 1e15, 1e-12)
    pred = predict_on("alexnet", make_device("xeon-x5650"), topo, "parameter_server",
                      {"replicas": 1, "partitions": 1, "ps_shards": 1}, batch=1)
    result = pred.result
    updates = [s for s in pred.trace.spans if s.name.endswith(".ps.update")]
    assert updates and max(s.end_s for s in updates) <= result["step_time_s"]
    assert result["step_time_s"] >= result["ps_update_s"]
    assert sum(result["breakdown"].values()) == pytest.approx(result["step_time_s"])


def test_cli_python_and_yaml_give_the_same_result(cli, tmp_path):
    args = dict(batch=16, precision="bf16", devices=2, parallel="data")
    python = predict("resnet50", "h200", **args)
    out = cli("predict", "--model", "resnet50", "--hardware", "h200", "--batch", "16",
              "--precision", "bf16", "--devices", "2", "--parallel", "data", "--json")
    assert json.loads(out.stdout) == json.loads(json.dumps(python))
    exp = tmp_path / "e.yaml"
    exp.write_text("title: t\nscenarios:\n  - name: a\n    workload: {model: resnet50, batch: 16,"
                   " precision: bf16}\n    hardware: {device: h200, count: 2}\n")
    row = run_experiment(load_experiment(exp))[0].row
    assert row["step_time_s"] == python["step_time_s"]
    assert row["global_batch"] == python["global_batch"] == 32


@pytest.mark.parametrize("kwargs, words", [
    ({"batch": 0}, ["--batch", "greater than 0"]),
    ({"devices": 0}, ["--devices"]),
    ({"framework": "jax"}, ["--framework", "jax", "pytorch"]),
    ({"conv_algorithm": "fft"}, ["--conv-algorithm", "fft", "im2col"]),
    ({"devices": 6, "devices_per_node": 4}, ["multiple of"]),
])
def test_bad_request_is_one_line_naming_the_flag(kwargs, words):
    with pytest.raises(UserError) as err:
        predict("alexnet", "h200", **kwargs)
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)
