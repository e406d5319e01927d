"""VGG16's layer shapes as simulator.measure reads them from workloads/models/vgg16.yaml.

They must agree with the simulator's own reading of the model (load_model + resolve_layers),
and give the GEMM shapes that the hand-written list in simulator/measure/shapes.py gave
before it was replaced by the model file (the facts below).
"""

from __future__ import annotations

import math

import pytest

from simulator.measure import plan
from simulator.measure.gemm import shaped_gemms
from simulator.measure.model_layers import model_layers
from simulator.measure.shapes import (
    ConvLayer,
    conv_gemms,
    conv_layer,
    vgg16_convs,
    vgg16_distinct_convs,
    vgg16_fcs,
    vgg16_pools,
)

# VGG16 (configuration D) at 224x224: (name, input channels, output channels, size)
VGG16_CONV_FACTS = [
    ("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224),
    ("conv2_1", 64, 128, 112), ("conv2_2", 128, 128, 112),
    ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56), ("conv3_3", 256, 256, 56),
    ("conv4_1", 256, 512, 28), ("conv4_2", 512, 512, 28), ("conv4_3", 512, 512, 28),
    ("conv5_1", 512, 512, 14), ("conv5_2", 512, 512, 14), ("conv5_3", 512, 512, 14),
]


def test_vgg16_has_the_13_convolutions_of_configuration_d() -> None:
    assert [tuple(c) for c in vgg16_convs()] == VGG16_CONV_FACTS
    assert all(isinstance(c, ConvLayer) for c in vgg16_convs())


def test_distinct_convolutions_drop_the_four_repeated_shapes() -> None:
    names = [c.name for c in vgg16_distinct_convs()]
    assert names == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2",
                     "conv4_1", "conv4_2", "conv5_1"]
    assert plan._DISTINCT == tuple(names)


def test_fully_connected_and_pooling_layers() -> None:
    assert vgg16_fcs() == (("fc6", 25088, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000))
    assert vgg16_pools() == (("pool1", 64, 224), ("pool2", 128, 112), ("pool3", 256, 56),
                             ("pool4", 512, 28), ("pool5", 512, 14))


def test_plans_name_only_layers_that_exist() -> None:
    pools = {name for name, _, _ in vgg16_pools()}
    fcs = {name for name, _, _ in vgg16_fcs()}
    for p in (plan.NUMPY_FULL, plan.NUMPY_QUICK, plan.CUPY_FULL, plan.CUPY_QUICK):
        for name in p.conv_gemm_layers + p.conv_layers:
            conv_layer(name)
        assert set(p.pool_layers) <= pools and set(p.fc_layers) <= fcs
    with pytest.raises(KeyError):
        conv_layer("conv6_1")


def test_shaped_gemms_of_the_full_cupy_plan() -> None:
    shapes = shaped_gemms(plan.CUPY_FULL)
    assert len(shapes) == 9 * 3 * 3 + 3 * 3 * 3 == 108
    assert shapes[0] == ("vgg16.conv1_1.fwd.b1", 224 * 224, 64, 27)
    assert shapes[-1] == ("vgg16.fc8.bwd_weight.b64", 1000, 4096, 64)
    fwd, bwd_data, bwd_weight = conv_gemms(conv_layer("conv5_1"), 64)
    assert (fwd.m, fwd.n, fwd.k) == (64 * 14 * 14, 512, 512 * 9)
    assert (bwd_data.m, bwd_data.n, bwd_data.k) == (64 * 14 * 14, 512, 512 * 9)
    assert (bwd_weight.m, bwd_weight.n, bwd_weight.k) == (512, 512 * 9, 64 * 14 * 14)


def test_measure_reads_the_model_as_the_simulator_does() -> None:
    from workloads.builder import resolve_layers
    from workloads.model_def import load_model

    model = load_model("vgg16")
    theirs = resolve_layers(model, batch=1)
    ours = model_layers("vgg16")
    assert [(lay.name, lay.kind) for lay in ours] == [(r.name, r.kind) for r in theirs]
    for mine, resolved, layer_def in zip(ours, theirs, model.layers, strict=True):
        assert (mine.in_shape,) == resolved.in_shapes, mine.name
        assert mine.out_shape == resolved.cost.out_shape, mine.name
        assert dict(mine.args) == layer_def.args(), mine.name
    params = sum(r.cost.params for r in theirs)
    ours_params = sum(c.out_channels * (9 * c.in_channels + 1) for c in vgg16_convs())
    ours_params += sum(n_out * (n_in + 1) for _, n_in, n_out in vgg16_fcs())
    assert ours_params == params == 138_357_544
    assert math.prod(ours[-1].out_shape) == 1000


def test_layer_arguments_are_read_only() -> None:
    with pytest.raises(TypeError):
        model_layers("vgg16")[0].args["out_channels"] = 1  # type: ignore[index]


def test_an_unsupported_model_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        model_layers("resnet50")
