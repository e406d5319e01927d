"""Convolutions by algorithm (depthwise, 1x1 as GEMM, implicit GEMM with the NCHW <-> NHWC
transposes of tensor-core kernels), batch norm in eval mode, the per-layer algorithm in
`predict --per-layer`, and the fit of these terms from layers timed alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hardware_models.catalog_io import build_device, load_spec
from hardware_models.profile import Profile
from simulator.calibrate.conv_layers import (
    fit_conv_layers,
    layer_ops,
    layer_records,
    load_layer_files,
    run_calibrate_conv,
    without_layer_terms,
)
from simulator.core.errors import UserError
from workloads.builder import build_graph
from workloads.layers import alignment, avgpool2d, batchnorm2d, conv2d, conv_algorithm, maxpool2d
from workloads.model_def import load_model

PROFILE = Profile(device="h200", origin="test", gemm_efficiency={"bf16": 0.9, "tf32": 0.9,
                                                               "fp32": 0.9},
                  memory_efficiency=0.8, layout_efficiency={"bf16": 0.4, "tf32": 0.6},
                  vector_efficiency={"depthwise.fp32": 0.02, "batchnorm.fp32": 0.01})


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, hw: int = 28,
          batch: int = 8):
    args = {"out_channels": cout, "kernel": k, "stride": stride, "padding": k // 2,
            "groups": groups, "bias": False}
    return conv2d([(cin, hw, hw)], args, batch)


def test_the_algorithm_follows_the_shape():
    assert conv_algorithm(64, 64, (3, 3), (1, 1), 64) == "depthwise"
    assert conv_algorithm(64, 256, (1, 1), (1, 1), 1) == "gemm"
    assert conv_algorithm(64, 256, (1, 1), (2, 2), 1) == "implicit_gemm"  # strided 1x1
    assert conv_algorithm(64, 64, (3, 3), (1, 1), 1) == "implicit_gemm"
    assert conv_algorithm(64, 64, (3, 3), (1, 1), 2) == "implicit_gemm"  # grouped, not depthwise
    assert conv_algorithm(3, 64, (7, 7), (2, 2), 1) == "small_channels"  # an RGB stem
    assert conv_algorithm(7, 64, (3, 3), (1, 1), 1) == "small_channels"
    assert conv_algorithm(8, 64, (3, 3), (1, 1), 1) == "implicit_gemm"  # one MMA step


def test_few_input_channels_run_on_the_fp32_units_in_every_dtype():
    """An RGB stem: cuDNN's CUDA-core (or channel-padded) kernels, a fitted fraction of the
    FP32 rate per pass, the product's FLOPs, the same time in bf16 as in fp32."""
    cost = _conv(3, 64, 7, stride=2, hw=224, batch=32)
    assert {w.kernel for w in (cost.fwd, cost.bwd_data, cost.bwd_weight)} == {
        "stem_fprop", "stem_dgrad", "stem_wgrad"}
    assert cost.fwd.algorithm == "small_channels"
    assert cost.fwd.flops == 2 * 32 * 64 * 112 * 112 * 3 * 49
    profile = PROFILE.model_copy(update={"vector_efficiency": {
        "stem_fprop.bf16": 0.25, "stem_fprop.fp32": 0.25, "stem_wgrad.bf16": 0.1}})
    h200 = build_device(load_spec("h200"), profile)
    (bf16,), (fp32,) = (layer_ops(cost.fwd, p) for p in ("bf16", "fp32-strict"))
    assert h200.op_cost(bf16).compute_s == pytest.approx(h200.op_cost(fp32).compute_s)
    assert h200.op_cost(bf16).compute_s == pytest.approx(
        cost.fwd.flops / (0.25 * h200.peak_flops("fp32")))
    (wgrad,) = layer_ops(cost.bwd_weight, "bf16")
    assert h200.op_cost(wgrad).compute_s == pytest.approx(
        cost.bwd_weight.flops / (0.1 * h200.peak_flops("fp32")))


def test_depthwise_is_a_vector_loop_of_two_flops_per_tap():
    cost = _conv(32, 32, 3, groups=32)
    assert cost.fwd.gemm is None and cost.fwd.kernel == "depthwise"
    assert cost.fwd.flops == 2 * 9 * 8 * 32 * 28 * 28
    assert cost.bwd_weight.flops == cost.fwd.flops


def test_depthwise_passes_are_kernels_of_their_own_with_a_cost_per_element():
    """Measured on the H200 (measurements/h200-conv-layers-extra.json): with one rate per tap
    for the three passes, 5x5 and 7x7 forward passes were 90-110% too slow and 3x3 data
    gradients 24% too fast; each pass is a kernel of its own, with a cost per element."""
    cost = _conv(32, 32, 5, groups=32)
    assert [w.kernel for w in (cost.fwd, cost.bwd_data, cost.bwd_weight)] == \
        ["depthwise", "depthwise_dgrad", "depthwise_wgrad"]
    assert cost.fwd.work_items == cost.bwd_data.work_items == 8 * 32 * 28 * 28  # padding 2
    profile = PROFILE.model_copy(update={
        "vector_efficiency": {"depthwise.fp32": 0.05, "depthwise_dgrad.fp32": 0.05},
        "item_flops": {"depthwise.fp32": 17.0}})
    h200 = build_device(load_spec("h200"), profile)
    fwd = layer_ops(cost.fwd, "fp32")[0]
    dgrad = layer_ops(cost.bwd_data, "fp32", "bwd_data")[0]
    rate = load_spec("h200").peak_flops["fp32"] * 0.05
    assert h200.op_cost(fwd).compute_s == pytest.approx(
        (fwd.flops + 17.0 * fwd.work_items) / rate)
    assert h200.op_cost(dgrad).compute_s == pytest.approx(dgrad.flops / (66.9e12 * 0.05))


def test_a_1x1_conv_is_a_gemm_per_sample_without_transposes():
    cost = _conv(64, 256, 1, hw=14)
    assert cost.fwd.gemm.m == 256 and cost.fwd.gemm.n == 14 * 14 and cost.fwd.gemm.k == 64
    assert cost.fwd.gemm.batch == 8 and cost.fwd.gemm.flops == cost.fwd.flops
    assert cost.fwd.layout == 0.0 and cost.fwd.algorithm == "gemm"


@pytest.mark.parametrize(("hw", "precision", "algorithm"), [
    (56, "bf16", "gemm"), (28, "bf16", "gemm"), (14, "bf16", "implicit_gemm"),
    (14, "fp32", "gemm"), (7, "fp32", "implicit_gemm"), (7, "bf16", "implicit_gemm")])
def test_a_1x1_conv_whose_pixel_stride_is_not_16_bytes_is_cudnns_implicit_gemm(
        hw, precision, algorithm):
    """cuBLAS's per-sample product needs 16-byte strides: 196 pixels of 2 bytes are not
    (ResNet-50's 14x14 maps in bf16), 49 pixels are not in any dtype; cuDNN's implicit GEMM
    (with its NCHW <-> NHWC transposes) runs instead, as the measured kernel names say."""
    cost = _conv(256, 1024, 1, hw=hw, batch=32)
    assert cost.fwd.algorithm == "gemm" and cost.fwd.align == alignment(256, 1024, hw * hw)
    for work in (cost.fwd, cost.bwd_data, cost.bwd_weight):
        (op,) = [o for o in layer_ops(work, precision) if o.kind == "gemm"]
        assert op.attr("algorithm") == algorithm
        assert (op.attr("layout_bytes", 0.0) > 0) == (algorithm == "implicit_gemm")
        assert op.flops == work.flops  # the same product, another kernel


def test_layout_transposes_only_where_the_dtype_has_tensor_cores():
    cost = _conv(64, 64, 3)
    bf16, fp32 = layer_ops(cost.fwd, "bf16")[0], layer_ops(cost.fwd, "fp32-strict")[0]
    tf32 = layer_ops(cost.fwd, "fp32")[0]  # PyTorch's default: cuDNN on TF32
    assert bf16.attr("layout_bytes") == 2 * cost.fwd.layout
    h200 = build_device(load_spec("h200"), PROFILE)
    v100 = build_device(load_spec("v100-sxm2"), PROFILE)
    assert h200.layout_s(bf16)[0] > 0 and h200.layout_s(tf32)[0] > 0
    assert h200.layout_s(fp32) == (0.0, 0)  # FFMA kernels read NCHW
    assert v100.layout_s(tf32) == (0.0, 0)  # no TF32 tensor cores on Volta
    # the transposes add to the convolution's time, at the layout efficiency
    slower = build_device(load_spec("h200"), PROFILE.model_copy(
        update={"layout_efficiency": {"bf16": 0.2}}))
    extra = slower.op_cost(bf16).duration_s - h200.op_cost(bf16).duration_s
    assert extra == pytest.approx(h200.layout_s(bf16)[0], rel=1e-9)


def test_a_3x3_weight_gradient_without_tensor_cores_is_winograd():
    cost = _conv(64, 64, 3, hw=56, batch=32)
    assert cost.bwd_weight.winograd_tiles == 32 * 14 * 14
    assert cost.fwd.winograd_tiles == 0 and cost.bwd_data.winograd_tiles == 0
    assert _conv(3, 64, 3).bwd_weight.winograd_tiles == 0  # the image layer: no
    assert _conv(64, 64, 3, stride=2).bwd_weight.winograd_tiles == 0  # strided: no
    h200 = build_device(load_spec("h200"), PROFILE)
    fp32, bf16 = (layer_ops(cost.bwd_weight, p)[0] for p in ("fp32-strict", "bf16"))
    assert h200.runs_winograd(fp32) and not h200.runs_winograd(bf16)
    direct = fp32.gemm
    # a quarter of the multiplies, the transforms at the bandwidth: faster than the direct
    # product here, never faster than its 36 products alone
    assert h200.op_cost(fp32).compute_s < h200.gemm_s(direct, "fp32", "conv")
    assert h200.op_cost(fp32).compute_s > h200.gemm_s(direct, "fp32", "conv") / 4 * 0.9


def test_batch_norm_in_eval_mode_is_one_affine_pass():
    cost = batchnorm2d([(64, 28, 28)], {}, 8)
    n = 8 * 64 * 28 * 28
    assert cost.infer_fwd.act_read == n and cost.infer_fwd.act_write == n
    infer = build_graph(load_model("resnet18"), 8, "infer", "fp32", input_place="device")
    train = build_graph(load_model("resnet18"), 8, "train", "fp32", input_place="device")
    bn_infer = infer.op("bn1.fwd")
    bn_train = train.op("bn1.fwd")
    assert bn_infer.attr("kernel") == "batchnorm_infer" and bn_train.attr("kernel") == "batchnorm"
    assert bn_infer.attr("ctas") == bn_train.attr("ctas") == 64  # one block per channel
    assert bn_infer.bytes < bn_train.bytes


def test_per_layer_output_names_each_convolutions_algorithm():
    proc = subprocess.run([sys.executable, "-m", "simulator", "predict", "--model",
                           "mobilenet_v2", "--hardware", "h200", "--batch", "8", "--json",
                           "--per-layer"], capture_output=True, text=True, check=True)
    layers = json.loads(proc.stdout)["layers"]
    algorithms = {row.get("algorithm") for row in layers}
    assert {"depthwise", "gemm", "small_channels"} <= algorithms  # the stem: 3 channels
    assert all("algorithm" not in row for row in layers if "bn" in row["layer"])


def _layer_file(profile: Profile) -> dict:
    """Records of a few layers timed as `profile` prices them (one network each)."""
    h200 = build_device(load_spec("h200"), profile)
    convs = [{"in_channels": 64, "height": 56, "width": 56, "out_channels": 64, "kernel_h": 3,
              "kernel_w": 3, "stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1, "groups": 1,
              "networks": {"netA": 1}},
             {"in_channels": 128, "height": 28, "width": 28, "out_channels": 256, "kernel_h": 3,
              "kernel_w": 3, "stride_h": 2, "stride_w": 2, "pad_h": 1, "pad_w": 1, "groups": 1,
              "networks": {"netB": 1}},
             {"in_channels": 96, "height": 56, "width": 56, "out_channels": 96, "kernel_h": 3,
              "kernel_w": 3, "stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1,
              "groups": 96, "networks": {"netB": 1}}]
    data = {"schema": "simulator.conv-layers/1", "conv_layers": convs, "norm_layers": [],
            "records": []}
    for batch in (8, 32, 128):
        for index in range(len(convs)):
            data["records"].append({"layer": "conv", "index": index, "batch": batch,
                                    "precision": "bf16", "cudnn_benchmark": False,
                                    "kernels": {p: [["k", 0.0]] for p in
                                                ("fwd", "bwd_data", "bwd_weight")}})
    for row, rec in zip(layer_records(data), [r for r in data["records"] for _ in range(3)],
                        strict=True):
        seconds = sum(h200.op_cost(op).duration_s for op in row["ops"])
        rec["kernels"][row["pass"]] = [["k", seconds * 1e6]]
    return data


def test_the_fit_recovers_the_efficiencies_the_times_were_made_with():
    truth = PROFILE.model_copy(update={
        "gemm_efficiency": {**PROFILE.gemm_efficiency, "conv.bf16": 0.5},
        "layout_efficiency": {"bf16": 0.3},
        "vector_efficiency": {"depthwise.bf16": 0.02}})
    fitted = fit_conv_layers(_layer_file(truth), "h200", PROFILE)
    assert fitted.gemm_efficiency["conv.bf16"] == pytest.approx(0.5, rel=0.05)
    assert fitted.layout_efficiency["bf16"] == pytest.approx(0.3, rel=0.1)
    assert fitted.vector_efficiency["depthwise.bf16"] == pytest.approx(0.02, rel=0.05)
    assert fitted.gemm_efficiency["conv.fp16"] == fitted.gemm_efficiency["conv.bf16"]


def test_each_pass_of_a_convolution_has_a_rate_of_its_own():
    """cuDNN's weight-gradient kernels run below the forward's rate (measured on the H200:
    ResNets' and MobileNetV2's weight gradients 20-40% below): a pass's own rate where the
    profile has one prices that pass alone, and the fit recovers it from layers timed alone."""
    graph = build_graph(load_model("resnet18"), 32, "train", "bf16")
    ops = {op.phase: op for op in graph.ops()
           if op.layer == "layer1.0.conv1" and op.kind == "gemm"}
    slow = PROFILE.model_copy(update={"gemm_efficiency": {**PROFILE.gemm_efficiency,
                                                          "conv_wgrad.bf16": 0.3}})
    base, own = (build_device(load_spec("h200"), p) for p in (PROFILE, slow))
    slower = own.op_cost(ops["bwd_weight"]).duration_s / base.op_cost(ops["bwd_weight"]).duration_s
    assert slower > 1.3  # its main loop 3x slower, its transposes as fast
    for phase in ("fwd", "bwd_data"):
        assert own.op_cost(ops[phase]).duration_s == base.op_cost(ops[phase]).duration_s
    truth = PROFILE.model_copy(update={"gemm_efficiency": {
        **PROFILE.gemm_efficiency, "conv.bf16": 0.6, "conv_dgrad.bf16": 0.5,
        "conv_wgrad.bf16": 0.3}})
    fitted = fit_conv_layers(_layer_file(truth), "h200", PROFILE)
    for key, value in (("conv.bf16", 0.6), ("conv_dgrad.bf16", 0.5), ("conv_wgrad.bf16", 0.3)):
        assert fitted.gemm_efficiency[key] == pytest.approx(value, rel=0.05)
    assert fitted.gemm_efficiency["conv_wgrad.fp16"] == fitted.gemm_efficiency["conv_wgrad.bf16"]
    assert "conv_wgrad.bf16" not in without_layer_terms(fitted).gemm_efficiency


def test_a_held_out_network_leaves_no_trace_in_the_fit():
    truth = PROFILE.model_copy(update={"vector_efficiency": {"depthwise.bf16": 0.02}})
    data = _layer_file(truth)
    held = fit_conv_layers(data, "h200", truth, exclude="netB")  # the only depthwise layer
    assert "depthwise.bf16" not in held.vector_efficiency  # not even the base's value
    assert "depthwise.bf16" not in without_layer_terms(truth).vector_efficiency
    assert "conv.bf16" in held.gemm_efficiency  # netA's 3x3 layer still fits it


def test_calibrate_conv_writes_a_usable_profile(tmp_path):
    path = tmp_path / "layers.json"
    path.write_text(json.dumps(_layer_file(PROFILE)))
    out = tmp_path / "profile.yaml"
    run_calibrate_conv([str(path)], "h200", "h100-sxm", str(out))
    proc = subprocess.run([sys.executable, "-m", "simulator", "predict", "--model", "resnet18",
                           "--hardware", str(out), "--batch", "8", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["step_time_s"] > 0
    with pytest.raises(UserError, match="--base"):
        run_calibrate_conv([str(path)], "h200", "no-such-profile", str(tmp_path / "x.yaml"))
    path.write_text('{"schema": "other"}')
    with pytest.raises(UserError, match="schema"):
        run_calibrate_conv([str(path)], "h200", "h100-sxm", str(tmp_path / "x.yaml"))


@pytest.mark.slow
def test_held_out_resnets_with_convolutions_by_algorithm():
    """Out of sample on the committed H200 zoo (benchmarks/accuracy.py prints the table):
    with the convolution and batch-norm terms refitted without the network, ResNet-50's
    device-bound steps have a median error under 18% (22.5% with the H100's single
    convolution efficiency, 13.3% measured with this model)."""
    import statistics
    from pathlib import Path

    from simulator.calibrate.conv_layers import load_layer_file
    from simulator.calibrate.host import held_out, step_records

    root = Path(__file__).resolve().parents[1] / "measurements"
    rows = held_out(step_records(root / "h200-torch-zoo.json"), "h200", "test", ["zoo"],
                    load_layer_file(root / "h200-conv-layers.json"))
    resnet50 = [abs(r["error"]) for r in rows if r["model"] == "resnet50" and not r["host_bound"]]
    assert statistics.median(resnet50) < 0.18


def _bn_train_op(channels: int, hw: int, batch: int):
    graph_op = layer_ops(batchnorm2d([(channels, hw, hw)], {}, batch).bwd_data, "fp32")
    return next(op for op in graph_op if op.attr("kernel") == "batchnorm_bwd")


def test_batch_norm_of_few_channels_streams_through_one_block_per_channel():
    """cuDNN's NCHW batch norm reduces each channel in one thread block (measured on the
    H200: 140 GB/s at 16 channels of 112x112, 2 TB/s from about 256 channels): with a
    per-block rate, 16 channels of the same bytes take far longer than 1,024; without one,
    the same time."""
    few, many = _bn_train_op(16, 112, 32), _bn_train_op(1024, 14, 32)
    assert few.attr("ctas") == 16 and many.attr("ctas") == 1024
    assert few.bytes == pytest.approx(many.bytes, rel=1e-3)  # but the per-channel weights
    limited = PROFILE.model_copy(update={
        "cta_bandwidth_bytes_per_s": {"batchnorm_bwd.fp32": 10e9}})
    h200 = build_device(load_spec("h200"), limited)
    slow, fast = h200.op_cost(few).duration_s, h200.op_cost(many).duration_s
    streamed = few.bytes - few.attr("reread_bytes")  # x and dy (51 MB) fit in the L2 cache
    assert slow == pytest.approx(streamed / 16 / 10e9, rel=1e-9)
    assert slow > 5 * fast
    plain = build_device(load_spec("h200"), PROFILE)
    assert plain.op_cost(few).duration_s == pytest.approx(plain.op_cost(many).duration_s,
                                                          rel=1e-3)


def test_batch_norms_second_pass_reads_from_the_l2_cache_where_its_inputs_fit():
    """Batch norm reads its inputs twice (statistics, then normalisation): the second time
    from the L2 cache where they fit in it (measured on the H200: 64-116 channels of 14x14 at
    batch 32 in 6 us, 3x faster per byte than layers of 112x112), else from memory again."""
    h200 = build_device(load_spec("h200"), PROFILE.model_copy(update={"cache_speedup": 1.0}))
    small, large = _bn_train_op(64, 14, 32), _bn_train_op(64, 56, 128)
    assert small.attr("reread_bytes") == 2 * 64 * 14 * 14 * 32 * 4  # x and dy, fp32
    assert large.attr("reread_bytes") > load_spec("h200").l2_bytes
    per_byte = [h200.op_cost(op).duration_s / op.bytes for op in (small, large)]
    assert per_byte[0] / per_byte[1] == pytest.approx(
        1 - small.attr("reread_bytes") / small.bytes, rel=1e-3)
    forward = layer_ops(batchnorm2d([(64, 14, 14)], {}, 32).fwd, "fp32")[0]
    assert forward.attr("reread_bytes") == 64 * 14 * 14 * 32 * 4  # x


def test_the_fit_recovers_a_per_block_rate_and_layer_files_merge(tmp_path):
    truth = PROFILE.model_copy(update={
        "vector_efficiency": {"batchnorm.fp32": 0.3, "batchnorm_bwd.fp32": 0.3},
        "cta_bandwidth_bytes_per_s": {"batchnorm.fp32": 20e9, "batchnorm_bwd.fp32": 12e9},
        "item_flops": {"batchnorm.fp32": 3e4}})
    h200 = build_device(load_spec("h200"), truth)
    norms = [{"channels": c, "height": hw, "width": hw, "networks": {net: 1}}
             for c, hw, net in ((16, 112, "netA"), (64, 56, "netA"), (256, 28, "netB"),
                                (1024, 7, "netB"))]
    files = []
    for part in (norms[:2], norms[2:]):
        data = {"schema": "simulator.conv-layers/1", "conv_layers": [], "norm_layers": part,
                "records": [{"layer": "batchnorm", "index": i, "batch": b, "precision": "fp32",
                             "cudnn_benchmark": False, "kernels": {"fwd": [], "bwd": []}}
                            for b in (32, 128) for i in range(len(part))]}
        for row, rec in zip(layer_records(data), [r for r in data["records"] for _ in range(2)],
                            strict=True):
            rec["kernels"][row["pass"]] = [["k", 1e6 * sum(h200.op_cost(op).duration_s
                                                           for op in row["ops"])]]
        path = tmp_path / f"layers{len(files)}.json"
        path.write_text(json.dumps(data))
        files.append(path)
    merged = load_layer_files(files)
    assert [n["channels"] for n in merged["norm_layers"]] == [16, 64, 256, 1024]
    assert {r["index"] for r in merged["records"]} == {0, 1, 2, 3}
    fitted = fit_conv_layers(merged, "h200", PROFILE)
    rates = fitted.cta_bandwidth_bytes_per_s
    assert rates["batchnorm_bwd.fp32"] == pytest.approx(12e9, rel=0.05)
    assert rates["batchnorm.fp32"] == pytest.approx(20e9, rel=0.05)
    assert fitted.item_flops["batchnorm.fp32"] == pytest.approx(3e4, rel=0.1)
    assert without_layer_terms(truth).cta_bandwidth_bytes_per_s == {}  # refitted per fold
    assert "batchnorm.fp32" not in without_layer_terms(truth).item_flops


def test_batch_norm_pays_per_plane_of_a_channel():
    """A block loops over its channel's (sample, channel) planes of H x W elements; a plane
    costs its turn beyond its bytes (measured on the H200: 7x7 planes in fp32 at a third of
    the bandwidth of 56x56 ones): the work items are the planes, N x C."""
    small, large = _bn_train_op(512, 7, 32), _bn_train_op(32, 56, 8)
    assert small.work_items == 32 * 512 and large.work_items == 8 * 32
    assert small.bytes == pytest.approx(large.bytes, rel=0.01)
    per_plane = PROFILE.model_copy(update={"item_flops": {"batchnorm_bwd.fp32": 5e4},
                                           "cache_speedup": 1.0})
    h200, flat = (build_device(load_spec("h200"), p) for p in
                  (per_plane, per_plane.model_copy(update={"item_flops": {}})))
    assert h200.op_cost(small).duration_s > 1.5 * h200.op_cost(large).duration_s
    assert flat.op_cost(small).duration_s == pytest.approx(flat.op_cost(large).duration_s,
                                                           rel=0.05)


def test_a_layer_record_pointing_nowhere_is_named(tmp_path):
    path = tmp_path / "layers.json"
    path.write_text(json.dumps({"schema": "simulator.conv-layers/1", "conv_layers": [],
                                "norm_layers": [], "records": [{"layer": "conv", "index": 3}]}))
    with pytest.raises(UserError, match=r"records\[0\].index: must point at one of the 0"):
        load_layer_files([path])


def _pool_op(kernel: int, stride: int, hw: int, phase: str = "fwd", batch: int = 32):
    cost = maxpool2d([(64, hw, hw)], {"kernel": kernel, "stride": stride}, batch)
    work = cost.fwd if phase == "fwd" else cost.bwd_data
    return layer_ops(work, "fp32", phase)[0]


def test_max_pooling_costs_per_output_as_well_as_per_tap():
    """Measured on the H200 (measurements/h200-pool-layers-*.json): 3x3 windows run at 62 G
    outputs/s and 2x2 at 81 G/s, not 9/4 times slower: a cost per output beyond the taps."""
    three, two = _pool_op(3, 2, 57), _pool_op(2, 2, 56)  # 28 x 28 outputs each
    assert three.work_items == two.work_items == 32 * 64 * 28 * 28
    assert three.flops == 9 * three.work_items and two.flops == 4 * two.work_items
    profile = PROFILE.model_copy(update={"vector_efficiency": {"maxpool2d.fp32": 0.02},
                                         "item_flops": {"maxpool2d.fp32": 11.0}})
    h200 = build_device(load_spec("h200"), profile)
    flat = build_device(load_spec("h200"), profile.model_copy(update={"item_flops": {}}))
    assert h200.op_cost(three).compute_s / h200.op_cost(two).compute_s == \
        pytest.approx((9 + 11) / (4 + 11))
    assert flat.op_cost(three).compute_s / flat.op_cost(two).compute_s == pytest.approx(9 / 4)


def test_a_pooling_backward_visits_the_windows_that_may_hold_each_input():
    """Per input element, the outputs whose windows may contain it (2x2/2: 1, 3x3/2: 4,
    3x3/1: 9); max pooling's backward zeroes the gradient first (a second kernel)."""
    for kernel, stride, visits in ((2, 2, 1), (3, 2, 4), (3, 1, 9)):
        op = _pool_op(kernel, stride, 28, "bwd_data")
        assert op.flops == visits * op.work_items == visits * 32 * 64 * 28 * 28
        assert op.kernels == 2
    avg = avgpool2d([(64, 28, 28)], {"kernel": 2}, 32).bwd_data
    assert avg is not None and avg.kernels == 1


def test_the_fit_recovers_a_pooling_rate_and_its_cost_per_output(tmp_path):
    truth = PROFILE.model_copy(update={
        "vector_efficiency": {"maxpool2d.fp32": 0.02, "maxpool2d_bwd.fp32": 0.0012},
        "item_flops": {"maxpool2d.fp32": 11.0, "maxpool2d_bwd.fp32": 12.0}})
    h200 = build_device(load_spec("h200"), truth)
    pools = [{"kind": "maxpool2d", "channels": c, "height": hw, "width": hw, "kernel_h": k,
              "kernel_w": k, "stride_h": s, "stride_w": s, "pad_h": 0, "pad_w": 0,
              "ceil_mode": False, "networks": {net: 1}}
             for c, hw, k, s, net in ((64, 112, 3, 2, "netA"), (128, 112, 2, 2, "netB"),
                                      (256, 28, 3, 1, "netB"))]
    data = {"schema": "simulator.conv-layers/1", "conv_layers": [], "norm_layers": [],
            "pool_layers": pools,
            "records": [{"layer": "pool", "index": i, "batch": b, "precision": "fp32",
                         "cudnn_benchmark": False, "kernels": {"fwd": [], "bwd": [], "infer": []}}
                        for b in (32, 128) for i in range(len(pools))]}
    for row, rec in zip(layer_records(data), [r for r in data["records"] for _ in range(3)],
                        strict=True):
        rec["kernels"][row["pass"]] = [["k", 1e6 * sum(h200.op_cost(op).duration_s
                                                       for op in row["ops"])]]
    path = tmp_path / "pools.json"
    path.write_text(json.dumps(data))
    fitted = fit_conv_layers(load_layer_files([path]), "h200", PROFILE)
    assert fitted.vector_efficiency["maxpool2d.fp32"] == pytest.approx(0.02, rel=0.05)
    assert fitted.item_flops["maxpool2d.fp32"] == pytest.approx(11.0, rel=0.1)
    assert fitted.item_flops["maxpool2d_bwd.fp32"] == pytest.approx(12.0, rel=0.1)
    assert without_layer_terms(truth).item_flops == {}  # refitted per fold
    data["records"][0]["index"] = 7
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"records\[0\].index: must point at one of the 3 pool_"):
        load_layer_files([path])


def test_another_frameworks_kernels_drop_the_per_output_costs():
    from hardware_models.profile import for_framework

    profile = PROFILE.model_copy(update={"item_flops": {"maxpool2d.fp32": 11.0},
                                         "kernel_rates_backend": "cupy"})
    assert for_framework(profile, "pytorch").item_flops == {}


def test_a_file_without_pooling_layers_keeps_the_profiles_pooling_rates():
    """A fit on a layer file that measures no pooling (h200-conv-layers.json alone) keeps the
    base profile's pooling terms; it had dropped them, and its folds ran max pooling at the
    FP32 peak (ResNet-50 held out 13% -> 19% median; regression)."""
    base = PROFILE.model_copy(update={"vector_efficiency": {"maxpool2d.fp32": 0.02},
                                      "item_flops": {"maxpool2d.fp32": 11.0}})
    fitted = fit_conv_layers(_layer_file(PROFILE), "h200", base)
    assert fitted.vector_efficiency["maxpool2d.fp32"] == 0.02
    assert fitted.item_flops["maxpool2d.fp32"] == 11.0
