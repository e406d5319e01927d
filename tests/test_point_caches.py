"""What makes a sweep point cheap after the first (issue 12, item 4) must not move a number:
the table of a sweep over models, precisions, modes, devices and batches is the one captured
before the caches were added (tests/golden/sweep_table.*), cold and again with every cache
warm; repeated layers share one cost, a plan asks the device once per distinct work, and
devices and clusters are built once per name and shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden_capture import journal_rows

from hardware_models.catalog_io import load_link, make_device
from hardware_models.topology import build_cluster
from simulator.__main__ import main
from simulator.api.predict import forget_cached
from simulator.engine.plan import single_device_plan, work_key
from workloads.builder import build_graph
from workloads.model_def import ModelDef, load_model
from workloads.resolve import resolve_layers

GOLDEN = Path(__file__).parent / "golden"


def test_sweep_table_is_the_golden_one_cold_and_warm(tmp_path):
    forget_cached()  # steps, graphs, resolved layers and layer costs from cold
    golden_rows = (GOLDEN / "sweep_table_rows.jsonl").read_text().splitlines()
    for run in ("cold", "warm"):
        out = tmp_path / run
        assert main(["sweep", str(GOLDEN / "sweep_table.yaml"), "--workers", "1", "--quick",
                     "--out", str(out)]) == 0
        assert (out / "points.csv").read_bytes() == (GOLDEN / "sweep_table.csv").read_bytes(), run
        rows = journal_rows(out)
        assert len(rows) == len(golden_rows) == 180
        changed = [i for i, (a, b) in enumerate(zip(rows, golden_rows, strict=True)) if a != b]
        assert not changed, f"{run}: points {changed[:5]} differ from the golden table"


def test_repeated_layers_share_one_cost_and_different_ones_do_not():
    layers = {layer.name: layer for layer in resolve_layers(load_model("resnet50"), 4)}
    # layer3's blocks after the first are alike: same shapes, same arguments
    assert layers["layer3.1.conv2"].cost is layers["layer3.2.conv2"].cost
    assert layers["layer3.1.conv2"].cost is not layers["layer3.0.conv2"].cost  # stride 2
    assert layers["layer3.1.conv2"].cost is not layers["layer2.1.conv2"].cost  # other shapes
    again = {layer.name: layer for layer in resolve_layers(load_model("resnet50"), 8)}
    assert again["layer3.1.conv2"].cost.fwd.flops == 2 * layers["layer3.1.conv2"].cost.fwd.flops


def _two_convs(out_channels: int) -> ModelDef:
    return ModelDef.model_validate({
        "name": "two", "input_shape": [3, 16, 16],
        "layers": [{"name": "a", "kind": "conv2d", "out_channels": out_channels, "kernel": 3},
                   {"name": "b", "kind": "conv2d", "out_channels": 8, "kernel": 3}]})


def test_a_changed_layer_gets_its_own_cost_not_a_remembered_one():
    small, large = resolve_layers(_two_convs(4), 2), resolve_layers(_two_convs(16), 2)
    assert small[0].cost.params == 4 * 3 * 9 + 4 and large[0].cost.params == 16 * 3 * 9 + 16
    assert small[1].in_shapes == ((4, 14, 14),) and large[1].in_shapes == ((16, 14, 14),)
    assert small[1].cost.params != large[1].cost.params


class _Counting:
    """A device that counts what it is asked."""

    def __init__(self, device):
        self.device, self.asked = device, 0
        self.name = device.name

    def op_cost(self, op):
        self.asked += 1
        return self.device.op_cost(op)

    def launch_s(self, op):
        return self.device.launch_s(op)


def test_a_plan_asks_the_device_once_per_distinct_work_with_the_same_costs():
    device = make_device("a100-sxm4")
    graph = build_graph(load_model("resnet50"), 8, "train", "bf16")
    counting = _Counting(device)
    plan = single_device_plan(graph, counting)
    ops = list(graph.ops())
    assert counting.asked == len({work_key(op) for op in ops}) < 0.7 * len(ops)
    assert [t.cost for t in plan.tasks] == [device.op_cost(op) for op in ops]
    assert [t.launch_s for t in plan.tasks] == [device.launch_s(op) for op in ops]


def test_devices_and_clusters_are_built_once_per_name_and_shape():
    assert make_device("h100-sxm") is make_device("h100-sxm")
    assert make_device("h100-sxm") is not make_device("h100-sxm", spec_sheet=True)
    nvlink, ib = load_link("nvlink4"), load_link("ib-ndr")
    one = build_cluster(2, 8, nvlink, ib)
    assert build_cluster(2, 8, nvlink, ib) is one
    assert build_cluster(4, 8, nvlink, ib) is not one
    assert build_cluster(2, 8, nvlink, load_link("ib-hdr")) is not one
    assert one.size == 16 and build_cluster(4, 8, nvlink, ib).size == 32


def test_points_that_differ_only_off_the_step_share_one_simulation(tmp_path, monkeypatch):
    import simulator.api.predict as predict

    forget_cached()
    simulated = []
    real = predict._predict_step
    monkeypatch.setattr(predict, "_predict_step",
                        lambda workload, *rest: simulated.append(workload.precision)
                        or real(workload, *rest))
    path = tmp_path / "offstep.yaml"
    path.write_text("title: off the step\nsweep:\n  base:\n"
                    "    workload: {model: mlp, batch: 16, dataset_size: 1000, epochs: 1}\n"
                    "    hardware: {device: gtx-1080}\n  grid:\n"
                    "    workload.precision: [fp32, bf16]\n"
                    "    workload.dataset_size: [1000, 10000, 100000]\n"
                    "    workload.epochs: [1, 3]\n    hardware.pue: [1.0, 1.5]\n")
    assert main(["sweep", str(path), "--workers", "1", "--quick", "--out",
                 str(tmp_path / "out")]) == 0
    assert sorted(simulated) == ["bf16", "fp32"]  # 24 points, 2 steps
    rows = [json.loads(line)["row"] for line in
            (tmp_path / "out" / "points.jsonl").read_text().splitlines()]
    fp32 = [r for r in rows if r["precision"] == "fp32"]
    assert len({r["step_time_s"] for r in fp32}) == 1 and len(fp32) == 12
    one = next(r for r in fp32 if (r["dataset_size"], r["epochs"], r["pue"]) == (1000, 1, 1.0))
    many = next(r for r in fp32 if (r["dataset_size"], r["epochs"], r["pue"]) == (100000, 3, 1.5))
    ratio = many["steps"] / one["steps"]  # ceil(100,000 / 16) x 3 against ceil(1,000 / 16)
    assert ratio == 6250 * 3 / 63
    assert many["time_to_train_s"] / one["time_to_train_s"] == pytest.approx(ratio)
    assert many["energy_j"] / one["energy_j"] == pytest.approx(1.5 * ratio)  # the PUE on top
