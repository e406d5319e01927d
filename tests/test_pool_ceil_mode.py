"""Pooling with `ceil_mode`: output sizes by PyTorch's rule (a partial last window counts,
provided it starts inside the input or its left padding), the YAML argument validated, and
where torch is installed every small case against torch's own pooling."""

from __future__ import annotations

import pytest

from simulator.core.errors import UserError
from workloads.builder import build_graph
from workloads.layers import avgpool2d, maxpool2d, out_size
from workloads.model_def import parse_model


@pytest.mark.parametrize("size, kernel, stride, padding, floor, ceil", [
    (112, 3, 2, 0, 55, 56),  # GoogLeNet's maxpool1: a partial last window rounds up
    (109, 3, 2, 0, 54, 54),  # SqueezeNet 1.0's first pool: the windows tile, no change
    (111, 3, 2, 0, 55, 55),
    (14, 2, 2, 0, 7, 7),  # even tiling
    (13, 2, 2, 0, 6, 7),  # one input row left over: a window of it
    (5, 2, 2, 1, 3, 3),  # the extra window would start in the right padding: dropped
    (6, 2, 2, 1, 4, 4),
    (4, 3, 3, 0, 1, 2),  # the test module's 4 x 4 by 3 x 3
    (1, 1, 2, 0, 1, 1),  # stride larger than the input
    (6, 3, 2, 1, 3, 4),  # padded: the extra window starts inside the input
])
def test_output_size_follows_pytorch(size, kernel, stride, padding, floor, ceil):
    assert out_size(size, kernel, stride, padding) == floor
    assert out_size(size, kernel, stride, padding, ceil_mode=True) == ceil


def test_ceil_mode_rounds_pooling_layers_up():
    args = {"kernel": 3, "stride": 2, "ceil_mode": True}
    assert maxpool2d([(64, 112, 112)], args, batch=1).out_shape == (64, 56, 56)
    assert avgpool2d([(64, 112, 112)], args, batch=1).out_shape == (64, 56, 56)
    assert maxpool2d([(64, 112, 112)], {"kernel": 3, "stride": 2},
                     batch=1).out_shape == (64, 55, 55)
    rect = maxpool2d([(8, 13, 12)], {"kernel": [2, 3], "stride": 2, "ceil_mode": True}, 1)
    assert rect.out_shape == (8, 7, 6)


def _model(pool: dict) -> dict:
    return {"name": "m", "input_shape": [3, 13, 13], "layers": [
        {"name": "conv", "kind": "conv2d", "out_channels": 4, "kernel": 1},
        {"name": "pool", "kind": "maxpool2d", "kernel": 2, "stride": 2, **pool},
        {"name": "flat", "kind": "flatten"}, {"name": "fc", "kind": "linear", "out_features": 2}]}


def test_ceil_mode_in_a_model_file_sizes_the_next_layers():
    floor = build_graph(parse_model(_model({}), "m.yaml"), 1, "infer")
    ceil = build_graph(parse_model(_model({"ceil_mode": True}), "m.yaml"), 1, "infer")
    assert floor.params == 4 * 3 + 4 + 4 * 6 * 6 * 2 + 2
    assert ceil.params == 4 * 3 + 4 + 4 * 7 * 7 * 2 + 2


@pytest.mark.parametrize("bad, message", [
    ({"ceil_mode": "yes"}, "ceil_mode"),
    ({"ceil_mode": 1}, "ceil_mode"),
])
def test_a_bad_ceil_mode_is_a_user_error(bad, message):
    with pytest.raises(UserError, match=message):
        parse_model(_model(bad), "m.yaml")


def test_ceil_mode_on_a_kind_without_it_is_a_user_error():
    data = _model({})
    data["layers"][0]["ceil_mode"] = True
    with pytest.raises(UserError, match=r"layers\[0\] \(conv\): kind conv2d has no ceil_mode"):
        parse_model(data, "m.yaml")


def test_every_small_case_matches_torch():
    torch = pytest.importorskip("torch")
    checked = 0
    for size in range(1, 24):
        for kernel in range(1, 6):
            for stride in range(1, 5):
                for padding in range(kernel // 2 + 1):  # torch: padding at most half a kernel
                    if size + 2 * padding < kernel:
                        continue
                    x = torch.zeros(1, 1, size, size)
                    for ceil in (False, True):
                        y = torch.nn.functional.max_pool2d(x, kernel, stride, padding,
                                                           ceil_mode=ceil)
                        z = torch.nn.functional.avg_pool2d(x, kernel, stride, padding,
                                                           ceil_mode=ceil)
                        ours = out_size(size, kernel, stride, padding, ceil)
                        assert y.shape[-1] == z.shape[-1] == ours, (size, kernel, stride,
                                                                     padding, ceil)
                        checked += 1
    assert checked > 1500
