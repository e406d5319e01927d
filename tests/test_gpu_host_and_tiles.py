"""The GPU model's per-dtype tiles, the store of C after the main loop, per-kernel host
launch costs and the autograd node cost, and how calibration finds them in measurements."""

from __future__ import annotations

import pytest

from hardware_models.catalog_io import build_device, default_profile, load_spec
from hardware_models.profile import Profile, for_framework
from simulator.calibrate.device import calibrate_profile, device_bound, host_launch_by_kernel
from workloads.builder import build_graph
from workloads.model_def import load_model
from workloads.ops import Gemm, Op

BASE = Profile(device="h100-sxm", origin="calibrated", gemm_efficiency={"fp16": 0.8, "tf32": 0.8},
               gemm_tile=(128, 128), gemm_half_dim=10.0, memory_efficiency=0.8, launch_s=7e-6)


def _gpu(profile: Profile):
    return build_device(load_spec("h100-sxm"), profile)


def _gemm(m: int, n: int, k: int, dtype: str, phase: str = "fwd") -> Op:
    g = Gemm(m, n, k)
    size = 2 if dtype == "fp16" else 4
    return Op("g", "gemm", phase, "l", g.flops, (m * k + k * n) * size, m * n * size, dtype,
              m * n, gemm=g)


def test_per_dtype_tile_changes_only_that_dtype():
    shared, own = _gpu(BASE), _gpu(BASE.model_copy(update={
        "gemm_tiles": {"tf32": (64, 64)}, "gemm_half_dims": {"tf32": 40.0}}))
    tf32, fp16 = _gemm(50176, 256, 2304, "tf32"), _gemm(50176, 256, 2304, "fp16")
    assert own.op_cost(fp16).compute_s == shared.op_cost(fp16).compute_s
    # smaller tiles with a larger half-speed intensity: a slower tf32 product
    assert own.op_cost(tf32).compute_s > 1.3 * shared.op_cost(tf32).compute_s


def test_storing_c_adds_to_a_thin_k_product():
    gpu = _gpu(BASE)
    op = _gemm(4096, 25088, 16, "fp16")  # a weight gradient at batch 16: an outer product
    store_s = 4096 * 25088 * 2 / (3.35e12 * 0.8)
    assert gpu.op_cost(op).compute_s == pytest.approx(gpu.gemm_s(op.gemm, "fp16") + store_s)
    assert gpu.op_cost(op).duration_s > op.bytes / (3.35e12 * 0.8)  # slower than its roofline


def test_host_launch_per_kernel_and_pass_and_autograd_node():
    gpu = _gpu(BASE.model_copy(update={
        "launch_s_by_kernel": {"conv": 40e-6, "conv.bwd_data": 55e-6, "relu": 9e-6},
        "autograd_node_s": 8e-6}))

    def conv(phase):
        return Op("c", "gemm", phase, "l", 1.0, 1.0, 1.0, "fp32", 1,
                  gemm=Gemm(8, 8, 8), attrs=(("kernel", "conv"),))

    relu = Op("r", "elementwise", "fwd", "l", 1.0, 1.0, 1.0, "fp32", 1, attrs=(("kernel", "relu"),))
    other = Op("o", "elementwise", "fwd", "l", 1.0, 1.0, 1.0, "fp32", 1)
    assert gpu.launch_s(conv("fwd")) == pytest.approx(40e-6)
    assert gpu.launch_s(conv("bwd_weight")) == pytest.approx(40e-6)
    assert gpu.launch_s(conv("bwd_data")) == pytest.approx(55e-6 + 8e-6)  # + autograd node
    assert gpu.launch_s(relu) == pytest.approx(9e-6)
    assert gpu.launch_s(other) == pytest.approx(7e-6)  # unmeasured kind: the tiny-op cost


def test_library_host_costs_do_not_carry_to_another_library_or_device():
    pytorch = default_profile(load_spec("h100-sxm"), "pytorch")
    assert pytorch.launch_s_by_kernel and pytorch.autograd_node_s > 0
    assert not for_framework(pytorch, "cupy").launch_s_by_kernel
    assert for_framework(pytorch, "cupy").autograd_node_s == 0.0
    transferred = default_profile(load_spec("a100-sxm4"), "pytorch")
    assert transferred.origin.startswith("transferred")
    # the H100's own per-library costs stay behind; the framework's host profile's cast term
    # (autocast's dtype casts, a property of the host and PyTorch) comes with the host
    assert set(transferred.launch_s_by_kernel) <= {"cast"} and transferred.autograd_node_s == 0.0


def _rec(op: str, median_s: float, host_s: float | None = None, **shape) -> dict:
    rec = {"op": op, "dtype": "fp32", "label": op, "threads": None, "backend": "pytorch",
           "file": "x.json", "median_s": median_s, "flops": 1e6, "bytes": 1e6, **shape}
    if host_s is not None:
        rec["host_s"] = host_s
    return rec


def test_host_costs_come_from_the_records_host_times():
    conv = dict(batch=1, in_channels=64, out_channels=64, height=14, width=14, kernel=3,
                stride=1, padding=1)
    recs = [_rec("conv2d_fwd", 1e-4, 40e-6, **conv), _rec("conv2d_fwd", 1e-4, 44e-6, **conv),
            _rec("conv2d_bwd_data", 1e-4, 60e-6, **conv),
            _rec("relu", 3e-6, 9e-6, elements=1 << 16),
            _rec("copy_h2d", 1e-5, 1e-3, bytes_moved=4096.0, pinned=True)]
    costs = host_launch_by_kernel(recs)
    assert costs["conv.fwd"] == pytest.approx(42e-6)
    assert costs["conv.bwd_data"] == pytest.approx(60e-6)
    assert costs["conv"] == pytest.approx(44e-6)
    assert costs["relu"] == pytest.approx(9e-6)
    assert len(costs) == 4  # copies wait for the device: their host time is not a launch


def test_device_bound_keeps_kernels_timed_on_the_device_alone():
    launch = {**_rec("launch", 7e-6), "label": "torch_op.host"}
    old_fast = _rec("relu", 8e-6, elements=1 << 16)  # timed with host gaps: dropped
    new_fast = _rec("relu", 3e-6, 9e-6, elements=1 << 16)  # behind a spin kernel: kept
    kept = device_bound([launch, old_fast, new_fast])
    assert new_fast in kept and old_fast not in kept


def test_calibration_measures_the_autograd_node_cost():
    recs = [{**_rec("launch", 10e-6), "label": "torch_op.host"},
            {**_rec("launch", 19e-6), "label": "torch_autograd_bwd.host"}]
    recs += [_rec("relu", 2.5e-6 * (1 + i), 9e-6, elements=1 << (16 + i)) for i in range(4)]
    profile = calibrate_profile(recs, "h100-sxm")
    assert profile.autograd_node_s == pytest.approx(9e-6)
    assert profile.launch_s == pytest.approx(10e-6)


def test_im2col_lowering_names_its_kernels():
    graph = build_graph(load_model("vgg16"), 2, "train", "fp16", "sgd", False, "im2col")
    kernels = {op.name: op.attr("kernel", op.kind) for op in graph.ops()}
    assert kernels["conv1_2.fwd.prologue"] == "im2col"
    assert kernels["conv1_2.bwd_data.epilogue"] == "col2im"


def test_calibrated_gpu_gemm_efficiencies_are_fractions_of_peak():
    from hardware_models.catalog_io import catalog_profile

    for name in ("h100-sxm", "h100-sxm.cupy"):
        profile = catalog_profile(name)
        assert profile is not None
        plain = {k: v for k, v in profile.gemm_efficiency.items() if "." not in k}
        assert plain and all(0 < v <= 1.0 for v in plain.values()), (name, plain)
