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
    return sum(l.cost.fwd.flops for l in layers if l.cost.fwd and l.cost.fwd.kind == "gemm") / 2


def _convs(name: str) -> list[tuple[int, int, int]]:
    """(in channels, out channels, groups) of every convolution."""
    model = load_model(name)
    shapes = {l.name: l.in_shapes[0] for l in resolve_layers(model, 1)}
    return [(shapes[l.name][0], l.out_channels, l.groups or 1)
            for l in model.layers if l.kind == "conv2d"]


def test_zoo_models_are_in_the_catalog():
    assert {"resnet18", "mobilenet_v2"} <= set(catalog_models())


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_counts_are_torchvision_exact(name):
    assert sum(l.cost.params for l in resolve_layers(load_model(name), 1)) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_macs_per_image(name):
    assert _macs(name) == pytest.approx(TORCHVISION_GMACS[name] * 1e9, rel=2e-3)


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_classifier_ends_in_1000_classes(name):
    assert resolve_layers(load_model(name), 1)[-1].cost.out_shape == (1000,)


def test_resnet18_has_eight_basic_blocks_with_three_projection_shortcuts():
    model = load_model("resnet18")
    adds = [l for l in model.layers if l.kind == "add"]
    downsample = [l for l in model.layers if l.kind == "conv2d" and "downsample" in l.name]
    assert len(adds) == 8 and len(downsample) == 3
    assert all(l.kernel == 1 and l.stride == 2 for l in downsample)
    assert all(l.bias is False for l in model.layers if l.kind == "conv2d")
    assert sum(l.kind == "conv2d" for l in model.layers) == 20  # 1 + 8 x 2 + 3


def test_mobilenet_v2_has_depthwise_convolutions():
    convs = _convs("mobilenet_v2")
    depthwise = [c for c in convs if c[2] > 1]
    assert len(depthwise) == 17  # one 3x3 per inverted residual block
    assert all(cin == cout == groups for cin, cout, groups in depthwise)
    assert len(convs) == 52 and convs[-1] == (320, 1280, 1)  # 17 blocks (the first has 2 convs)
    assert all(l.bias is False for l in load_model("mobilenet_v2").layers if l.kind == "conv2d")


def test_mobilenet_v2_blocks_expand_by_six_and_add_only_where_shapes_match():
    model = load_model("mobilenet_v2")
    convs = _convs("mobilenet_v2")
    expand = [(cin, cout) for cin, cout, g in convs[3:] if g == 1 and cout > cin and cout != 1280]
    assert expand and all(cout == 6 * cin for cin, cout in expand)
    assert convs[1] == (32, 32, 32)  # the first block (t = 1) has no expansion
    assert sum(l.kind == "add" for l in model.layers) == 10
    assert sum(l.kind == "relu6" for l in model.layers) == 35 and not any(
        l.kind == "relu" for l in model.layers)
    assert [l.p for l in model.layers if l.kind == "dropout"] == [0.2]


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
