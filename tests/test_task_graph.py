"""Task-graph workloads: the generators' closed forms, critical-path bounds, the one
prediction path on every device kind, and one-line errors for bad graphs."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simulator
from hardware_models.catalog_io import make_device
from hardware_models.ideal import IdealDevice
from simulator.core.errors import UserError
from tests.conftest import run_cli
from workloads.generators import (
    BlockedLUArgs,
    TiledGemmArgs,
    blocked_lu,
    generate,
    lu_task_count,
    parse_spec_string,
    tiled_gemm,
)
from workloads.ops import Op
from workloads.task_graph import build_task_graph, critical_path_s, parse_task_graph


def lu_flops(n: int) -> float:
    """Gaussian elimination of an n x n matrix: 2/3 n^3 - 1/2 n^2 - 1/6 n."""
    return 2 * n**3 / 3 - n**2 / 2 - n / 6


@pytest.mark.parametrize("layout", ["panels", "tiles"])
@pytest.mark.parametrize(("n", "block"), [(1024, 128), (1000, 96), (7, 3), (512, 512), (40, 1)])
def test_lu_flops_and_task_counts_are_the_closed_forms(n, block, layout):
    ops = build_task_graph(blocked_lu(BlockedLUArgs(n=n, block=block, layout=layout)))
    assert ops.flops == pytest.approx(lu_flops(n), rel=1e-12)
    blocks = math.ceil(n / block)
    assert len(ops) == lu_task_count(blocks, layout)
    if layout == "tiles":  # 2 per diagonal tile, 2 TRSMs per pair, one GEMM per trailing tile
        gemms = sum(1 for op in ops.ops() if op.layer == "gemm")
        assert gemms == (blocks - 1) * blocks * (2 * blocks - 1) // 6
    assert ops.memory["peak_bytes"] == 8 * n * n


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 64), st.sampled_from(["panels", "tiles"]))
def test_lu_flops_hold_for_any_size_and_block(n, block, layout):
    if layout == "tiles" and lu_task_count(math.ceil(n / block), layout) > 20_000:
        return
    ops = build_task_graph(blocked_lu(BlockedLUArgs(n=n, block=block, layout=layout)))
    assert ops.flops == pytest.approx(lu_flops(n), rel=1e-9, abs=1e-9)


def test_the_trailing_updates_shrink():
    ops = build_task_graph(blocked_lu(BlockedLUArgs(n=4096, block=512)))
    gemms = [op for op in ops.ops() if op.layer == "gemm"]
    assert [op.gemm.m for op in gemms] == [4096 - 512 * (k + 1) for k in range(7)]
    assert all(a.flops > b.flops for a, b in zip(gemms, gemms[1:], strict=False))


def test_tiled_gemm_counts_and_flops():
    ops = build_task_graph(tiled_gemm(TiledGemmArgs(n=1000, tile=300)))
    assert len(ops) == 4**3 and ops.flops == pytest.approx(2 * 1000**3)


def test_critical_path_bounds_the_single_device_time():
    """One device runs the tasks one after another: the time is the sum of the tasks'
    times; no schedule beats the critical path, which is shorter where tasks are independent."""
    device = IdealDevice()
    ops = build_task_graph(tiled_gemm(TiledGemmArgs(n=2048, tile=512)))
    each = [device.op_cost(op).duration_s for op in ops.ops()]
    path = critical_path_s(ops, lambda op: device.op_cost(op).duration_s)
    assert path == pytest.approx(4 * each[0])  # a chain of 4 along k, 16 chains
    result = simulator.predict({"kind": "tiled_gemm", "n": 2048, "tile": 512}, "ideal")
    assert result["step_time_s"] == pytest.approx(sum(each))
    assert path <= result["step_time_s"] and path == pytest.approx(result["step_time_s"] / 16)


def test_lu_tiles_critical_path_is_a_fraction_of_the_work():
    device = IdealDevice()
    ops = build_task_graph(blocked_lu(BlockedLUArgs(n=4096, block=256, layout="tiles")))
    total = sum(device.op_cost(op).duration_s for op in ops.ops())
    path = critical_path_s(ops, lambda op: device.op_cost(op).duration_s)
    assert 0 < path < total / 4  # 16 block columns: most updates are independent


@pytest.mark.parametrize("hardware", ["i7-10510u", "xeon-e5-2670", "gtx-680", "h100-sxm",
                                      "ideal"])
def test_lu_runs_on_every_device_kind(hardware):
    result = simulator.predict("blocked_lu:n=2048,block=256", hardware)
    assert result["status"] == "ok" and result["flops"] == pytest.approx(lu_flops(2048))
    assert result["step_time_s"] > 0 and result["model"] == "lu-n2048-b256"
    assert sum(result["breakdown"].values()) == pytest.approx(result["step_time_s"])


def test_more_flops_per_second_is_never_slower():
    slow = simulator.predict("blocked_lu:n=2048,block=256", "gtx-680")["step_time_s"]
    fast = simulator.predict("blocked_lu:n=2048,block=256", "h100-sxm")["step_time_s"]
    assert fast < slow


def test_fp64_on_a_kepler_geforce_is_slow():
    """GK104 does FP64 at 1/24 of its FP32 rate: the same LU in fp32 is much faster."""
    f64 = simulator.predict("blocked_lu:n=4096,block=256", "gtx-680")
    f32 = simulator.predict("blocked_lu:n=4096,block=256,dtype=fp32", "gtx-680")
    assert f64["breakdown"]["compute"] > 10 * f32["breakdown"]["compute"]
    assert f64["step_time_s"] > 3 * f32["step_time_s"]


def test_a_panels_lu_is_one_library_call():
    """scipy's lu_factor and torch.linalg.lu_factor are one call: the program dispatches
    the first kernel, the library launches all the others itself."""
    ops = list(build_task_graph(blocked_lu(BlockedLUArgs(n=1024, block=256))).ops())
    assert [op.framework_calls for op in ops] == [1] + [0] * (len(ops) - 1)
    assert sum(op.library_kernels for op in ops) == sum(op.kernels for op in ops) - 1
    tiles = build_task_graph(blocked_lu(BlockedLUArgs(n=1024, block=256, layout="tiles")))
    assert all(op.library_kernels == 0 for op in tiles.ops())  # each task a call of its own


def test_a_library_kernel_costs_the_gpu_host_the_driver_launch_not_the_dispatch():
    """Regression: each of GETRF's per-column kernels was charged PyTorch's dispatch (about
    30 us on the H200's host), so small LUs were predicted 5-12x too slow
    (docs/validation.md section 7)."""
    gpu = make_device("h200", framework="pytorch")
    ops = build_task_graph(blocked_lu(BlockedLUArgs(n=1024, block=256))).ops()
    pivots = [op for op in ops if op.kernels == 256][1]  # the second panel's
    dispatched = replace(pivots, calls=None)
    assert gpu.launch_s(pivots) == pytest.approx(256 * gpu.spec.kernel_launch_s)
    assert gpu.launch_s(dispatched) == pytest.approx(256 * gpu.profile.launch_s)
    assert gpu.profile.launch_s > gpu.spec.kernel_launch_s  # the framework costs more
    assert gpu.op_cost(pivots) == gpu.op_cost(dispatched)  # the device does the same work


def test_a_library_kernel_skips_the_cpu_dispatch_but_not_the_fork_join():
    cpu = make_device("xeon-e5-2670")
    op = Op("t", "elementwise", "task", "t", 1e3, 8e3, 8e3, "fp64", 10**6, kernels=100)
    inside = replace(op, calls=0)
    dispatch = cpu.profile.kernel_overhead_s * 100
    assert cpu.op_cost(op).overhead_s - cpu.op_cost(inside).overhead_s == pytest.approx(dispatch)
    assert cpu.op_cost(inside).overhead_s > 0  # the threads still fork and join per call


def test_the_lu_per_column_kernels_bound_a_small_gpu_lu_from_below():
    """A small LU on a GPU is bound by its n per-column kernels, launched back to back by the
    library: at least n of the driver's launches or n kernel overheads, whichever is more."""
    gpu = make_device("h200", framework="pytorch")
    result = simulator.predict("blocked_lu:n=1024,block=256", "h200", framework="pytorch")
    per_column = max(gpu.spec.kernel_launch_s, gpu.profile.kernel_overhead_s)
    assert 1024 * per_column < result["step_time_s"] < 2 * 1024 * per_column


def test_an_lu_trailing_update_costs_what_the_same_gemm_costs_alone():
    """The trailing updates go through the device's matrix-product model with the GEMM
    library's rates, as a lone product of that shape does (no efficiency of their own)."""
    gpu = make_device("h200", framework="pytorch")
    ops = build_task_graph(blocked_lu(BlockedLUArgs(n=8192, block=256))).ops()
    update = next(op for op in ops if op.layer == "gemm")
    g = update.gemm
    alone = parse_task_graph({"kind": "task_graph", "name": "one", "tasks": [
        {"name": "u", "kind": "gemm", "dtype": "fp64", "gemm": {"m": g.m, "n": g.n, "k": g.k},
         "flops": update.flops, "bytes_read": update.bytes_read,
         "bytes_written": update.bytes_written}]}, "test")
    assert gpu.op_cost(build_task_graph(alone).op("u")) == gpu.op_cost(update)


DAG = """kind: task_graph
name: diamond
tasks:
  - {name: a, kind: gemm, gemm: {m: 512, n: 512, k: 512}}
  - {name: b, kind: elementwise, flops: 1.0e+6, bytes_read: 4.0e+6, bytes_written: 4.0e+6,
     after: [a]}
  - {name: c, kind: gemm, gemm: {m: 512, n: 512, k: 512}, after: [a]}
  - {name: d, kind: reduction, flops: 1.0e+6, bytes_read: 8.0e+6, after: [b, c]}
"""


def test_a_task_graph_file_through_the_cli(tmp_path):
    path = tmp_path / "diamond.yaml"
    path.write_text(DAG)
    out = run_cli("predict", "--model", str(path), "--hardware", "ideal", "--json",
                  "--per-layer")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    device = IdealDevice()
    a = 2 * 512**3 / device.flops_per_s
    b = max(1e6 / device.flops_per_s, 8e6 / device.bytes_per_s)
    d = max(1e6 / device.flops_per_s, 8e6 / device.bytes_per_s)
    assert result["step_time_s"] == pytest.approx(a + b + a + d)
    assert {row["layer"] for row in result["layers"]} == {"gemm", "elementwise", "reduction"}


def test_a_task_graph_in_an_experiment(tmp_path):
    (tmp_path / "diamond.yaml").write_text(DAG)
    exp = tmp_path / "exp.yaml"
    exp.write_text("title: DAGs\nscenarios:\n"
                   "  - {name: file, workload: {model: diamond.yaml},\n"
                   "     hardware: {device: h100-sxm}}\n"
                   "  - name: lu\n"
                   "    workload: {model: {kind: blocked_lu, n: 1024, block: 128}}\n"
                   "    hardware: {device: i7-10510u}\n")
    out = run_cli("run", str(exp), "--quick", "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["scenarios"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[1]["flops"] == pytest.approx(lu_flops(1024))


BAD = [
    ("  - {name: a, after: [b]}\n  - {name: b, after: [a]}\n",
     "tasks[1].after: dependencies form a cycle: a -> b -> a"),
    ("  - {name: a, after: [a]}\n", "dependencies form a cycle: a -> a"),
    ("  - {name: a}\n  - {name: b, after: [zz]}\n", "tasks[1].after[0]: unknown task 'zz'"),
    ("  - {name: a, flops: -1}\n", "tasks[0].flops: must be greater than or equal to 0"),
    ("  - {name: a, flops: 1.0e+30}\n", "tasks[0].flops: must be less than or equal to"),
    ("  - {name: a}\n  - {name: a}\n", "tasks[1].name: duplicate task name 'a'"),
    ("  - {name: a, gemm: {m: 0, n: 1, k: 1}}\n", "tasks[0].gemm.m: must be greater than"),
    ("  - {name: a, colour: red}\n", "tasks[0].colour: unknown field"),
    ("  - {name: a, kind: fft}\n", "tasks[0].kind: must be 'gemm', 'elementwise' or"),
    ("  - {name: a, kernels: 2, calls: 3}\n", "tasks[0].calls: at most kernels (2), got 3"),
    ("  - {name: a, calls: -1}\n", "tasks[0].calls: must be greater than or equal to 0"),
]


@pytest.mark.parametrize(("tasks", "message"), BAD)
def test_bad_task_graphs_are_one_line_with_file_and_line(tmp_path, tasks, message):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: task_graph\nname: bad\ntasks:\n" + tasks)
    out = run_cli("predict", "--model", str(path), "--hardware", "ideal")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith(f"error: --model: {path}:") and message in out.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "blocked_lu:n=4096,block=0"], "--model: block: must be greater than or equal"),
    (["--model", "blocked_lu:n=99999999,block=64"], "--model: n: must be less than or equal"),
    (["--model", "blocked_lu:n=8192,block=8,layout=tiles"], "more than 100,000; use a larger"),
    (["--model", "blocked_lu:n=64,block=8,layout=rows"], "--model: layout: must be 'panels'"),
    (["--model", "blocked_lu:n=64,block=8", "--batch", "4"],
     "--batch: a task graph runs once: leave batch out"),
    (["--model", "blocked_lu:n=64,block=8", "--devices", "2", "--parallel", "data"],
     "--parallel: strategy 'data' splits a network's layers or batch, not a task graph; run "
     "it on tasks"),
])
def test_bad_task_graph_requests_are_one_line(args, message):
    out = run_cli("predict", "--hardware", "h100-sxm", *args)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert message in out.stderr


def test_generator_strings_and_mappings_agree():
    spec = parse_spec_string("blocked_lu:n=512,block=64,layout=tiles")
    assert spec == {"kind": "blocked_lu", "n": 512, "block": 64, "layout": "tiles"}
    assert parse_spec_string("vgg16") is None and parse_spec_string("nosuch:n=1") is None
    graph = generate(spec, "model")
    assert graph == blocked_lu(BlockedLUArgs(n=512, block=64, layout="tiles"))


def test_a_python_built_task_graph_is_checked():
    with pytest.raises(UserError, match="unknown task 'x'"):
        parse_task_graph({"kind": "task_graph", "name": "g",
                          "tasks": [{"name": "a", "after": ["x"]}]}, "g")


def test_example_task_graph_file_runs():
    path = Path(__file__).resolve().parents[1] / "experiments" / "task_graphs" / "diamond.yaml"
    result = simulator.predict(str(path), "h100-sxm")
    assert result["status"] == "ok" and result["model"] == "diamond"


def test_the_tasks_strategy_spreads_a_tile_dag_over_devices():
    """A list schedule over 4 GPUs: faster than one GPU, never faster than the critical path
    (each task's cost on the device, transfers free) nor than the work split evenly."""
    lu = "blocked_lu:n=8192,block=512,layout=tiles"
    one = simulator.predict(lu, "h100-sxm")
    four = simulator.predict(lu, "h100-sxm", devices=4, devices_per_node=4, parallel="tasks")
    device = make_device("h100-sxm")
    ops = build_task_graph(blocked_lu(BlockedLUArgs(n=8192, block=512, layout="tiles")))
    path = critical_path_s(ops, lambda op: device.op_cost(op).duration_s)
    work = sum(device.op_cost(op).duration_s for op in ops.ops())
    assert max(path, work / 4) <= four["step_time_s"] < one["step_time_s"]
    assert sum(four["tasks_per_device"]) == len(ops) and four["communication_s"] > 0
    assert four["flops"] == pytest.approx(lu_flops(8192))


def test_the_tasks_strategy_refuses_a_network():
    out = run_cli("predict", "--model", "mlp", "--hardware", "h100-sxm", "--devices", "2",
                  "--parallel", "tasks")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "places the tasks of a task graph; mlp is a network" in out.stderr
