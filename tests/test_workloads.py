"""Golden facts of the catalog models, layer formulas, and the training graph's structure."""

from __future__ import annotations

import networkx as nx
import pytest

from simulator.core.errors import UserError
from workloads.builder import build_graph, resolve_layers
from workloads.layers import conv2d, linear, maxpool2d
from workloads.model_def import catalog_models, load_model, parse_model


def macs(name: str) -> float:
    layers = resolve_layers(load_model(name), 1)
    return sum(layer.cost.fwd.flops for layer in layers
               if layer.cost.fwd and layer.cost.fwd.kind == "gemm") / 2


def params(name: str) -> int:
    return sum(layer.cost.params for layer in resolve_layers(load_model(name), 1))


def test_vgg16_golden_facts():
    assert params("vgg16") == 138_357_544
    assert macs("vgg16") == pytest.approx(15.47e9, rel=1e-3)


def test_resnet50_and_alexnet_golden_facts():
    assert params("resnet50") == 25_557_032
    assert macs("resnet50") == pytest.approx(4.1e9, rel=0.01)
    assert params("alexnet") == 61_100_840
    assert params("vgg19") == 143_667_240


def test_catalog_lists_required_models():
    assert {"vgg16", "vgg19", "alexnet", "resnet50", "mlp"} <= set(catalog_models())


def test_conv_formula_stride_padding_groups():
    cost = conv2d([(32, 56, 56)], {"out_channels": 64, "kernel": 3, "stride": 2, "padding": 1,
                                   "groups": 4}, batch=2)
    assert cost.out_shape == (64, 28, 28)
    assert cost.params == 64 * 8 * 9 + 64
    assert cost.fwd.flops == 2 * 2 * 64 * 28 * 28 * 8 * 9
    assert cost.bwd_data.flops == cost.fwd.flops == cost.bwd_weight.flops


def test_linear_and_pool_formulas():
    cost = linear([(25088,)], {"out_features": 4096}, batch=16)
    assert cost.params == 25088 * 4096 + 4096
    assert cost.fwd.gemm.m == 16 and cost.fwd.gemm.k == 25088
    pool = maxpool2d([(64, 224, 224)], {"kernel": 2, "stride": 2}, batch=1)
    assert pool.out_shape == (64, 112, 112)


def test_training_graph_is_a_dag_with_backward_for_every_weighted_layer():
    g = build_graph(load_model("vgg16"), 8, "train", "fp32")
    assert nx.is_directed_acyclic_graph(g.to_networkx())
    names = set(g.order)
    assert "conv1_1.bwd_weight" in names and "conv1_1.bwd_data" not in names  # input needs no grad
    assert "conv1_2.bwd_data" in names and "optimizer.step" in names
    position = {n: i for i, n in enumerate(g.order)}
    for a, b in g.edges():
        assert position[a] < position[b], "program order must respect dependencies"


def test_training_flops_are_three_times_forward():
    train = build_graph(load_model("vgg16"), 1, "train", "fp32")
    gemm = sum(op.flops for op in train.ops() if op.kind == "gemm")
    # forward + backward-weight everywhere, backward-data everywhere but the first conv
    first = 2 * 64 * 3 * 9 * 224 * 224
    assert gemm == pytest.approx(3 * 2 * 15.47e9 - first, rel=2e-3)


def test_resnet_branches_accumulate_gradients():
    g = build_graph(load_model("resnet50"), 2, "train", "fp32")
    accum = [n for n in g.order if n.endswith(".grad_accum")]
    assert len(accum) == 16  # one per bottleneck block input
    assert nx.is_directed_acyclic_graph(g.to_networkx())


def test_mixed_precision_halves_activation_traffic_and_keeps_fp32_master_state():
    fp32 = build_graph(load_model("vgg16"), 32, "train", "fp32")
    bf16 = build_graph(load_model("vgg16"), 32, "train", "bf16")
    assert bf16.op("relu3_1.fwd").bytes == fp32.op("relu3_1.fwd").bytes / 2
    assert bf16.op("conv3_1.fwd").dtype == "bf16"
    assert bf16.op("optimizer.step").bytes == fp32.op("optimizer.step").bytes
    assert bf16.memory["activations_bytes"] < fp32.memory["activations_bytes"]


def test_adam_state_is_twice_sgd_momentum():
    sgd = build_graph(load_model("mlp"), 4, "train", "fp32", "sgd")
    adam = build_graph(load_model("mlp"), 4, "train", "fp32", "adam")
    assert adam.memory["optimizer_state_bytes"] == 2 * sgd.memory["optimizer_state_bytes"]


@pytest.mark.parametrize("bad, message", [
    ({"name": "m", "input_shape": [4], "layers": [{"name": "a", "kind": "nope"}]},
     "unknown layer kind"),
    ({"name": "m", "input_shape": [4], "layers": [{"name": "a", "kind": "linear"}]},
     "needs 'out_features'"),
    ({"name": "m", "input_shape": [4], "layers": [{"name": "a", "kind": "linear", "out_features": 2,
                                                   "colour": 1}]}, "colour"),
    ({"name": "m", "input_shape": [4], "layers": [{"name": "a", "kind": "relu", "inputs": ["z"]}]},
     "not an earlier layer"),
])
def test_bad_model_definitions_name_the_problem(bad, message):
    with pytest.raises(UserError, match=message):
        parse_model(bad, "model.yaml")


def test_kernel_larger_than_input_is_a_user_error():
    model = parse_model({"name": "m", "input_shape": [3, 4, 4],
                         "layers": [{"name": "c", "kind": "conv2d", "out_channels": 2,
                                     "kernel": 7}]},
                        "m.yaml")
    with pytest.raises(UserError, match="layer c"):
        build_graph(model, 1, "infer")


@pytest.mark.parametrize("batch", [0, -3])
def test_bad_batch_is_rejected(batch):
    with pytest.raises(UserError, match="batch"):
        build_graph(load_model("mlp"), batch, "train")


def test_dropout_is_an_identity_in_inference():
    infer = build_graph(load_model("vgg16"), 4, "infer", "fp32")
    train = build_graph(load_model("vgg16"), 4, "train", "fp32")
    assert "drop6.fwd" not in infer.order and "drop6.fwd" in train.order
    assert "relu7.fwd" in infer.predecessors("fc8.fwd")
    assert "drop7.fwd" in train.predecessors("fc8.fwd")


def test_im2col_adds_lowering_kernels_and_traffic_but_not_flops():
    implicit = build_graph(load_model("vgg16"), 2, "train", "fp32")
    lowered = build_graph(load_model("vgg16"), 2, "train", "fp32", conv_algorithm="im2col")
    assert "conv2_1.fwd.prologue" in lowered.order and "conv2_1.bwd_data.epilogue" in lowered.order

    def gemm(g):
        return sum(op.flops for op in g.ops() if op.kind == "gemm")

    assert gemm(lowered) == gemm(implicit)
    assert lowered.bytes > implicit.bytes
    with pytest.raises(UserError, match="conv algorithm"):
        build_graph(load_model("vgg16"), 2, conv_algorithm="fft")


def test_im2col_gemms_are_cublas_gemms_not_cudnn_convolutions():
    """Regression: lowered convolutions were priced with cuDNN's convolution efficiency."""
    lowered = build_graph(load_model("vgg16"), 2, "train", "fp32-strict", conv_algorithm="im2col")
    implicit = build_graph(load_model("vgg16"), 2, "train", "fp32")
    assert lowered.op("conv2_1.fwd").attr("kernel") is None
    assert implicit.op("conv2_1.fwd").attr("kernel") == "conv"
    assert implicit.op("conv2_1.fwd").dtype == "tf32"  # PyTorch's default lets cuDNN use TF32
    assert implicit.op("fc6.fwd").dtype == "fp32"


def test_linear_applies_to_the_last_dimension_regression():
    """Regression: `linear` flattened a multi-dimensional input (228,264,960 parameters for
    a per-token 768 -> 2304 projection of 128 tokens); it is per token, as torch.nn.Linear."""
    model = parse_model({"name": "qkv", "input_shape": [128, 768],
                         "layers": [{"name": "c_attn", "kind": "linear", "out_features": 2304}]},
                        "test")
    (layer,) = resolve_layers(model, 4)
    assert layer.cost.params == 1_771_776 == 768 * 2304 + 2304
    assert layer.cost.out_shape == (128, 2304)
    assert layer.cost.fwd.gemm.m == 4 * 128 and layer.cost.fwd.gemm.k == 768
    assert layer.cost.fwd.flops == 2 * 4 * 128 * 768 * 2304
    assert layer.cost.bwd_weight.gemm.k == 4 * 128  # the weight gradient sums over tokens


def test_linear_on_an_image_needs_an_explicit_flatten():
    bad = {"name": "m", "input_shape": [3, 8, 8], "layers": [
        {"name": "fc", "kind": "linear", "in_features": 192, "out_features": 10}]}
    with pytest.raises(UserError, match="in_features is 192 but the input's last dimension is 8"):
        resolve_layers(parse_model(bad, "test"), 1)
    bad["layers"].insert(0, {"name": "flat", "kind": "flatten"})
    assert resolve_layers(parse_model(bad, "test"), 1)[-1].cost.params == 192 * 10 + 10
