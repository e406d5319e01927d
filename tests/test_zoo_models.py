"""Golden facts of the torchvision zoo models in the catalog (ResNet-18, MobileNetV2): exact
parameter counts, MACs per 224x224 image, their block structure, and a training step that
builds and simulates on the ideal device and on an H200."""

from __future__ import annotations

import pytest

import simulator
from workloads.builder import resolve_layers
from workloads.model_def import catalog_models, load_model

# torchvision's own counts: sum(p.numel() for p in torchvision.models.NAME().parameters())
TORCHVISION_PARAMS = {"resnet18": 11_689_512, "mobilenet_v2": 3_504_872}
# multiply-accumulates of the convolutions and linear layers per image (torchvision's model
# table: 1.81 and 0.30 "GFLOPS", which count one multiply-add as one)
TORCHVISION_GMACS = {"resnet18": 1.814, "mobilenet_v2": 0.3008}


def _macs(name: str) -> float:
    layers = resolve_layers(load_model(name), 1)
    return sum(layer.cost.fwd.flops for layer in layers
               if layer.cost.fwd and layer.cost.fwd.kind == "gemm") / 2


def _convs(name: str) -> list[tuple[int, int, int]]:
    """(in channels, out channels, groups) of every convolution."""
    model = load_model(name)
    shapes = {layer.name: layer.in_shapes[0] for layer in resolve_layers(model, 1)}
    return [(shapes[layer.name][0], layer.out_channels, layer.groups or 1)
            for layer in model.layers if layer.kind == "conv2d"]


def test_zoo_models_are_in_the_catalog():
    assert {"resnet18", "mobilenet_v2"} <= set(catalog_models())


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_counts_are_torchvision_exact(name):
    layers = resolve_layers(load_model(name), 1)
    assert sum(layer.cost.params for layer in layers) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_macs_per_image(name):
    assert _macs(name) == pytest.approx(TORCHVISION_GMACS[name] * 1e9, rel=2e-3)


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_classifier_ends_in_1000_classes(name):
    assert resolve_layers(load_model(name), 1)[-1].cost.out_shape == (1000,)


def test_resnet18_has_eight_basic_blocks_with_three_projection_shortcuts():
    model = load_model("resnet18")
    adds = [layer for layer in model.layers if layer.kind == "add"]
    downsample = [layer for layer in model.layers
                  if layer.kind == "conv2d" and "downsample" in layer.name]
    assert len(adds) == 8 and len(downsample) == 3
    assert all(layer.kernel == 1 and layer.stride == 2 for layer in downsample)
    assert all(layer.bias is False for layer in model.layers if layer.kind == "conv2d")
    assert sum(layer.kind == "conv2d" for layer in model.layers) == 20  # 1 + 8 x 2 + 3


def test_mobilenet_v2_has_depthwise_convolutions():
    convs = _convs("mobilenet_v2")
    depthwise = [c for c in convs if c[2] > 1]
    assert len(depthwise) == 17  # one 3x3 per inverted residual block
    assert all(cin == cout == groups for cin, cout, groups in depthwise)
    assert len(convs) == 52 and convs[-1] == (320, 1280, 1)  # 17 blocks (the first has 2 convs)
    assert all(layer.bias is False for layer in load_model("mobilenet_v2").layers
               if layer.kind == "conv2d")


def test_mobilenet_v2_blocks_expand_by_six_and_add_only_where_shapes_match():
    model = load_model("mobilenet_v2")
    convs = _convs("mobilenet_v2")
    expand = [(cin, cout) for cin, cout, g in convs[3:] if g == 1 and cout > cin and cout != 1280]
    assert expand and all(cout == 6 * cin for cin, cout in expand)
    assert convs[1] == (32, 32, 32)  # the first block (t = 1) has no expansion
    assert sum(layer.kind == "add" for layer in model.layers) == 10
    assert sum(layer.kind == "relu6" for layer in model.layers) == 35 and not any(
        layer.kind == "relu" for layer in model.layers)
    assert [layer.p for layer in model.layers if layer.kind == "dropout"] == [0.2]


@pytest.mark.parametrize("hardware", ["ideal", "h200"])
@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_a_training_step_builds_and_simulates(name, hardware):
    result = simulator.predict(name, hardware, batch=8)
    assert result["status"] == "ok" and result["fits"]
    assert result["params"] == TORCHVISION_PARAMS[name]
    assert result["step_time_s"] > 0 and result["samples_per_s"] > 0
    # forward, backward-data and backward-weight: close to 3 x 2 x MACs x batch
    assert result["flops"] == pytest.approx(6 * 8 * TORCHVISION_GMACS[name] * 1e9, rel=0.1)
    assert sum(result["breakdown"].values()) == pytest.approx(result["step_time_s"], rel=1e-6)
