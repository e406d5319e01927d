"""Engine invariants on random plans and exact times on the ideal device."""

from __future__ import annotations

import json

import networkx as nx
import pytest
from graph_helpers import random_graphs
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware_models.ideal import IdealDevice
from simulator.api.predict import predict
from simulator.engine.loop import simulate
from simulator.engine.plan import single_device_plan
from simulator.results.metrics import CATEGORIES, breakdown
from workloads.builder import build_graph
from workloads.model_def import load_model


def durations(plan):
    return {t.name: t.cost.duration_s for t in plan.tasks}


@settings(max_examples=60, deadline=None)
@given(random_graphs(), st.floats(1e10, 1e13), st.floats(1e9, 1e12))
def test_run_is_bounded_by_critical_path_work_and_serial_sum(graph, flops_per_s, bytes_per_s):
    device = IdealDevice(flops_per_s, bytes_per_s)
    plan = single_device_plan(graph, device)
    trace = simulate(plan)
    dur = durations(plan)
    dag = graph.to_networkx()
    for a, b in dag.edges:
        dag.edges[a, b]["w"] = dur[a]
    longest = nx.dag_longest_path(dag, weight="w")
    critical = sum(dur[n] for n in longest)
    serial = sum(dur.values())
    work = sum(op.flops for op in graph.ops()) / flops_per_s
    eps = 1e-9 * max(serial, 1e-12)
    assert trace.end_s >= critical - eps
    assert trace.end_s >= work - eps
    assert trace.end_s <= serial + eps
    end = {s.name: s.end_s for s in trace.spans}
    for s in trace.spans:
        for p in graph.predecessors(s.name):
            assert s.start_s >= end[p] - eps, f"{s.name} started before {p} ended"
    assert len(trace.spans) == len(graph)
    parts = breakdown(trace)
    assert sum(parts.values()) == pytest.approx(trace.end_s, rel=1e-9, abs=1e-15)


def test_ideal_device_times_are_exact():
    graph = build_graph(load_model("mlp"), 8, "infer", "fp32", sync_input=True)
    device = IdealDevice(flops_per_s=1e9, bytes_per_s=1e9)
    trace = simulate(single_device_plan(graph, device))
    expected = sum(max(op.flops / 1e9, op.bytes / 1e9) for op in graph.ops())
    assert trace.end_s == pytest.approx(expected, rel=1e-12)  # a chain: the serial sum


def test_more_bandwidth_or_flops_never_slows_a_step():
    graph = build_graph(load_model("alexnet"), 4, "train", "fp32")
    base = simulate(single_device_plan(graph, IdealDevice(1e12, 1e11))).end_s
    assert simulate(single_device_plan(graph, IdealDevice(2e12, 1e11))).end_s <= base
    assert simulate(single_device_plan(graph, IdealDevice(1e12, 2e11))).end_s <= base


def test_breakdown_has_every_category_and_sums_to_step():
    result = predict("vgg16", "ideal", batch=2, mode="train")
    assert set(result["breakdown"]) == set(CATEGORIES)
    assert sum(result["breakdown"].values()) == pytest.approx(result["step_time_s"], rel=1e-9)


def test_same_inputs_give_byte_identical_output():
    a = json.dumps(predict("resnet50", "ideal", batch=4, per_layer=True), sort_keys=True)
    b = json.dumps(predict("resnet50", "ideal", batch=4, per_layer=True), sort_keys=True)
    assert a == b


def test_prefetched_input_overlaps_the_step_and_sync_input_adds_to_it():
    graph = build_graph(load_model("mlp"), 64, "infer", "fp32")
    sync = build_graph(load_model("mlp"), 64, "infer", "fp32", sync_input=True)
    device = IdealDevice(1e9, 1e9)
    copy_s = graph.op("input.h2d").bytes / 1e9
    kernels_s = sum(max(op.flops / 1e9, op.bytes / 1e9) for op in graph.ops() if op.kind != "copy")
    overlapped = simulate(single_device_plan(graph, device)).end_s
    assert overlapped == pytest.approx(max(copy_s, kernels_s))
    assert simulate(single_device_plan(sync, device)).end_s == pytest.approx(copy_s + kernels_s)
