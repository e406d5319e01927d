"""The layer kinds imported graphs need: `slice` (a view of a part), `elementwise` with a
learned tensor (`params`) and `stochastic_depth` (training only), with their bad input."""

from __future__ import annotations

import pytest

from simulator.core.errors import UserError
from workloads.builder import build_graph
from workloads.model_def import parse_model
from workloads.resolve import resolve_layers


def _model(*layers: dict) -> object:
    return parse_model({"name": "m", "input_shape": [6, 8], "layers": list(layers)}, "test")


def test_a_slice_is_a_view_whose_backward_writes_its_part():
    model = _model({"name": "fc0", "kind": "linear", "out_features": 8},
                   {"name": "part", "kind": "slice", "shape": [3, 8]},
                   {"name": "fc", "kind": "linear", "out_features": 4})
    infer = build_graph(model, 2, "infer")
    assert "part.fwd" not in infer.order  # no kernel
    train = build_graph(model, 2, "train")
    grad = train.op("part.bwd_data")
    assert grad.bytes_read == grad.bytes_written == 2 * 3 * 8 * 4  # the part, fp32


def test_a_learned_tensor_of_an_elementwise_layer_is_trained():
    model = _model({"name": "pos", "kind": "elementwise", "shape": [6, 8], "params": 48},
                   {"name": "fc", "kind": "linear", "out_features": 4})
    train = build_graph(model, 2, "train", "fp32", "adamw")
    assert train.params == 48 + 8 * 4 + 4
    grad = train.op("pos.bwd_weight")
    assert grad.phase == "bwd_weight" and grad.bytes_written == 48 * 4  # its fp32 gradient
    plain = build_graph(_model({"name": "pos", "kind": "elementwise", "shape": [6, 8]},
                               {"name": "fc", "kind": "linear", "out_features": 4}), 2)
    assert "pos.bwd_weight" not in plain.order


def test_stochastic_depth_runs_in_training_only():
    model = _model({"name": "sd", "kind": "stochastic_depth", "p": 0.2},
                   {"name": "fc", "kind": "linear", "out_features": 4})
    assert "sd.fwd" in build_graph(model, 2, "train").order
    assert "sd.fwd" not in build_graph(model, 2, "infer").order


@pytest.mark.parametrize("layer, message", [
    ({"name": "part", "kind": "slice", "shape": [7, 8]}, "more elements than its input"),
    ({"name": "part", "kind": "slice", "shape": [3, 8], "inputs": ["input", "input"]},
     "slice needs one input"),
    ({"name": "pos", "kind": "elementwise", "shape": [6, 8], "params": -1}, "params"),
])
def test_bad_layers_are_one_line(layer, message):
    with pytest.raises(UserError, match=message):
        resolve_layers(_model(layer), 1)
