"""A cache never hands one configuration what was computed for another (issue 12, item 4):
each point below differs from the one before it in one field that matters, runs with every
cache warm from the points before it, and must give what it gives from cold, and not what
the point before it gave. The same for inline models (kept by content), models bound to a
sequence length, the largest batch that fits, and a graph's plan layout after it changes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hardware_models.catalog_io import make_device
from simulator.api.predict import forget_cached, predict
from simulator.config.request import scenario_request
from simulator.engine.loop import simulate
from simulator.engine.plan import single_device_plan
from workloads.builder import build_graph
from workloads.model_def import load_model
from workloads.ops import Op

BASE: dict[str, Any] = {"model": "resnet18", "hardware": "a100-sxm4", "batch": 4}
# one field at a time, each point from the one before it
CHANGES: list[dict[str, Any]] = [
    {}, {"batch": 8}, {"precision": "bf16"}, {"mode": "infer"}, {"mode": "train"},
    {"optimizer": "adam"}, {"conv_algorithm": "im2col"}, {"conv_algorithm": "implicit_gemm"},
    {"sync_input": True}, {"input": "pageable"}, {"hardware": "h100-sxm"}, {"spec_sheet": True},
    {"framework": "pytorch", "spec_sheet": False, "model": "vgg16"}, {"precision": "fp16"},
    {"global_batch": 4, "batch": None}, {"model": "mobilenet_v2"},
]


def _result(options: dict[str, Any]) -> str:
    return json.dumps(predict(**options), sort_keys=True)


def test_a_cached_step_graph_or_plan_is_never_reused_for_a_different_config():
    forget_cached()
    options, points = dict(BASE), []
    for change in CHANGES:
        options.update(change)
        points.append((dict(options), _result(options)))  # warm: after all the points before
    for (before, earlier), (options, warm) in zip(points, points[1:], strict=False):
        assert warm != earlier, f"{options} gave the result of {before}"
    for options, warm in points:
        forget_cached()
        assert _result(options) == warm, f"{options}: warm and cold results differ"


INLINE = {"name": "tiny", "input_shape": [3, 16, 16], "layers": [
    {"name": "a", "kind": "conv2d", "out_channels": 8, "kernel": 3},
    {"name": "b", "kind": "conv2d", "out_channels": 8, "kernel": 3}]}


def _inline(out_channels: int) -> dict[str, Any]:
    model = json.loads(json.dumps(INLINE))
    model["layers"][1]["out_channels"] = out_channels
    return model


def test_inline_models_are_one_object_per_content_and_differ_when_a_layer_does():
    first = scenario_request(_inline(8), "a100-sxm4", batch=2).workload.model
    again = scenario_request(_inline(8), "a100-sxm4", batch=2).workload.model
    other = scenario_request(_inline(16), "a100-sxm4", batch=2).workload.model
    assert first is again and other is not first
    warm = predict(_inline(16), "a100-sxm4", batch=2)
    assert warm["params"] != predict(_inline(8), "a100-sxm4", batch=2)["params"]
    forget_cached()
    assert predict(_inline(16), "a100-sxm4", batch=2) == warm


def test_a_model_bound_to_a_sequence_length_is_one_object_per_length():
    gpt2 = load_model("gpt2")
    assert gpt2.with_seq_len(128) is gpt2.with_seq_len(128)
    assert gpt2.with_seq_len(128) is not gpt2.with_seq_len(256)
    short = predict("gpt2", "h100-sxm", batch=1, seq_len=128)
    long = predict("gpt2", "h100-sxm", batch=1, seq_len=256)
    assert long["flops"] > short["flops"]
    forget_cached()
    assert predict("gpt2", "h100-sxm", batch=1, seq_len=256) == long


@pytest.mark.parametrize("order", [(4096, 2048, 8192), (8192, 4096, 2048)])
def test_the_largest_batch_that_fits_is_the_cold_one_from_any_batch(order):
    forget_cached()
    warm = [predict("vgg16", "gtx-1080", batch=b) for b in order]
    bf16 = predict("vgg16", "gtx-1080", batch=order[0], precision="bf16")
    assert {r["status"] for r in warm + [bf16]} == {"out_of_memory"}
    assert len({r["largest_batch_that_fits"] for r in warm}) == 1
    assert bf16["largest_batch_that_fits"] != warm[0]["largest_batch_that_fits"]
    for batch, result in zip(order, warm, strict=True):
        forget_cached()
        assert predict("vgg16", "gtx-1080", batch=batch) == result
    forget_cached()
    assert predict("vgg16", "gtx-1080", batch=order[0], precision="bf16") == bf16


def test_a_graph_planned_then_changed_is_planned_anew():
    device = make_device("a100-sxm4")
    graph = build_graph(load_model("mlp"), 4)
    before = simulate(single_device_plan(graph, device)).end_s
    last = graph.order[-1]
    graph.add(Op("extra", "elementwise", "update", "extra", 1e9, 1e9, 1e9, "fp32", 1 << 20),
              [last])
    tasks = single_device_plan(graph, device).tasks
    assert [t.name for t in tasks][-1] == "extra" and len(tasks) == len(graph)
    assert simulate(single_device_plan(graph, device)).end_s > before
    graph.mark("extra", "kernel", "relu")
    assert single_device_plan(graph, device).tasks[-1].op.attr("kernel") == "relu"


def test_an_in_process_sweep_freezes_what_points_keep_and_unfreezes_at_the_end(tmp_path):
    import gc

    from simulator.api.sweep import run_tasks, sweep_tasks
    from simulator.config.sweep import load_sweep

    path = tmp_path / "s.yaml"
    path.write_text("title: t\nsweep:\n  base: {workload: {model: mlp, batch: 1}, hardware: "
                    "{device: gtx-1080}}\n  grid:\n    workload.batch: [1, 2, 3]\n")
    tasks, invalid = sweep_tasks(*load_sweep(path), path.parent)
    assert not invalid
    gc.unfreeze()
    frozen_while = []
    for record in run_tasks(tasks, 1):
        assert record["status"] == "ok"
        frozen_while.append(gc.get_freeze_count())
    assert all(count > 0 for count in frozen_while)  # each point's survivors left alone
    assert gc.get_freeze_count() == 0  # and given back to the collector at the end
