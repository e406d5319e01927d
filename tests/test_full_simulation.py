"""Full simulation (every device its own tasks): collectives expanded so that the tasks grow
linearly with the devices, equal to the symmetric shortcut where the cluster is symmetric,
and stragglers (one device slower than the rest) that the step waits for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cluster_helpers import cluster

from hardware_models.catalog_io import make_device
from hardware_models.ideal import IdealDevice
from simulator.api import build
from simulator.api.predict import _job, predict, predict_on
from simulator.config.request import scenario_request
from simulator.core.errors import UserError
from simulator.engine.loop import simulate
from simulator.parallel import strategy
from simulator.parallel.collectives import collective
from simulator.parallel.comm_plan import collective_plan
from workloads.model_def import load_model

ALEXNET = load_model("alexnet")
H200 = make_device("h200", spec_sheet=True)
RING = {"collective": "allreduce_ring"}


def _step(devices: int, per_node: int, simulate_as: str, slowdowns: dict[int, float] | None = None,
          options: dict | None = None, device=H200) -> dict:
    opts = {**(options or RING), "simulate": simulate_as}
    topo = cluster(devices // per_node, per_node)
    return predict_on(ALEXNET, device, topo, "data", opts, batch=16, precision="bf16",
                      mode="train", slowdowns=slowdowns).result


def _tasks(devices: int, per_node: int, options: dict) -> int:
    request = scenario_request("alexnet", "h200", batch=8, precision="bf16", devices=devices,
                               devices_per_node=per_node, parallel="data",
                               options={**options, "simulate": "full"})
    model, device = build.scenario_parts(request)
    topo = build.hardware_topology(request.hardware, device, 1)
    job = _job(request.workload, model, device, topo, dict(request.parallel.options), {})
    return len(strategy.get("data")(job).plan.tasks)


@pytest.mark.parametrize("kind", ["allreduce_ring", "allreduce_tree"])
def test_tasks_grow_linearly_with_the_devices(kind):
    # each bucket's ring had 2(n - 1) steps of n flows: tasks grew as n squared
    per_device = {n: _tasks(n, 8, {"collective": kind}) / n for n in (16, 64, 256)}
    assert per_device[256] <= per_device[16] * 1.5, per_device


def test_a_tree_in_full_is_one_task_per_device_and_one_flow_per_stream_of_chunks():
    # one task per device per run of steps cost 2 x depth + 1 tasks a device (55 over 1,024)
    topo = cluster(4, 4)
    plan = collective_plan("allreduce_tree", topo, 64e6, IdealDevice(), False)
    spans, _ = collective.get("allreduce_tree").spans(list(range(16)), topo, 64e6)
    comm = [t for t in plan.tasks if t.stream == "comm"]
    assert sorted(t.device for t in comm) == list(range(16))
    moving = [f for t in comm for f in t.transfer.flows if f.size_bytes > 0]
    assert sorted((f.src, f.dst) for f in moving) == sorted((s, d) for _, _, s, d in spans)


@pytest.mark.parametrize("nodes, per_node", [(1, 8), (2, 4), (4, 2), (3, 1), (8, 4)])
def test_a_tree_in_full_follows_the_lockstep_schedule_at_least(nodes, per_node):
    # each stream of chunks ends no earlier than its last step in the lockstep schedule (the
    # symmetric shortcut's), and later where the links it shares in flight hold it up
    topo = cluster(nodes, per_node)
    for size in (1e3, 1e6, 256e6):
        sym = simulate(collective_plan("allreduce_tree", topo, size, IdealDevice(), True)).end_s
        full = simulate(collective_plan("allreduce_tree", topo, size, IdealDevice(), False)).end_s
        assert sym * (1 - 1e-12) <= full <= sym * 1.05, (size, sym, full)


def test_a_tree_in_full_waits_for_a_straggler():
    tree = {"collective": "allreduce_tree"}
    base = _step(16, 4, "full", options=tree)["step_time_s"]
    assert _step(16, 4, "full", {6: 1.5}, options=tree)["step_time_s"] > base


@pytest.mark.parametrize("nodes, per_node", [(1, 8), (4, 8), (8, 4), (16, 8)])
def test_a_ring_alone_full_equals_symmetric(nodes, per_node):
    topo = cluster(nodes, per_node)
    for size in (1e3, 1e6, 25e6):
        sym = simulate(collective_plan("allreduce_ring", topo, size, IdealDevice(), True)).end_s
        full = simulate(collective_plan("allreduce_ring", topo, size, IdealDevice(), False)).end_s
        assert full == pytest.approx(sym, rel=1e-9)


@pytest.mark.parametrize("devices, per_node", [(16, 8), (64, 8), (256, 8), (96, 4)])
def test_a_data_parallel_step_full_equals_symmetric(devices, per_node):
    full, sym = _step(devices, per_node, "full"), _step(devices, per_node, "symmetric")
    assert (full["simulated"], sym["simulated"]) == ("full", "symmetric")
    for key in ("step_time_s", "communication_s", "samples_per_s"):
        assert full[key] == pytest.approx(sym[key], rel=1e-9), key


def test_a_straggler_of_slowdown_one_changes_nothing():
    assert _step(16, 8, "full", {5: 1.0}) == _step(16, 8, "full")


def test_the_step_waits_for_a_straggler_and_no_more():
    base = _step(16, 8, "full")["step_time_s"]
    slow = [_step(16, 8, "auto", {5: f})["step_time_s"] for f in (1.1, 1.5, 2.0, 4.0)]
    assert all(a <= b for a, b in zip(slow, slow[1:], strict=False)), slow  # more never faster
    assert base < slow[0]
    for f, t in zip((1.1, 1.5, 2.0, 4.0), slow, strict=True):
        assert t <= f * base * (1 + 1e-9)  # at most every kernel of the step f times longer


def test_a_straggler_is_simulated_in_full_even_beyond_the_auto_limit():
    result = _step(16, 8, "auto", {3: 1.2})
    assert result["simulated"] == "full"


def test_symmetric_with_a_straggler_is_an_error():
    with pytest.raises(UserError, match="options.simulate.*stragglers"):
        _step(16, 8, "symmetric", {3: 1.2})


def test_which_device_straggles_does_not_matter_in_a_ring():
    times = {d: _step(16, 8, "full", {d: 1.5})["step_time_s"] for d in (0, 7, 8, 15)}
    assert max(times.values()) == pytest.approx(min(times.values()), rel=1e-9), times


def test_stragglers_in_yaml_and_on_the_command_line_agree(tmp_path):
    common = ["--model", "alexnet", "--hardware", "h200", "--devices", "4", "--batch", "8",
              "--json"]
    cli = subprocess.run([sys.executable, "-m", "simulator", "predict", *common,
                          "--straggler", "2=1.5"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    py = predict("alexnet", "h200", batch=8, devices=4,
                 stragglers=[{"device": 2, "slowdown": 1.5}])
    plain = predict("alexnet", "h200", batch=8, devices=4)
    assert json.loads(cli.stdout)["step_time_s"] == pytest.approx(py["step_time_s"], rel=1e-12)
    assert py["step_time_s"] > plain["step_time_s"]


@pytest.mark.parametrize("flag, message", [
    ("4=1.5", "device 4 is not in a cluster of 4"),
    ("1=0.5", "greater than or equal to 1"),
    ("1", "expected DEVICE=SLOWDOWN"),
    ("1=nan", "finite"),
    ("x=2", "valid integer"),
])
def test_bad_stragglers_are_one_line_errors(flag, message):
    cli = subprocess.run([sys.executable, "-m", "simulator", "predict", "--model", "alexnet",
                          "--hardware", "h200", "--devices", "4", "--straggler", flag],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and cli.stdout == ""
    assert cli.stderr.startswith("error: --straggler") and message in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
