"""The 2012 'cat' network (Le et al.): about a billion parameters, as its file states."""

from __future__ import annotations

import re

from workloads.builder import build_graph, resolve_layers
from workloads.model_def import load_model

MODEL = load_model("le2012_cat")


def _stated_params() -> int:
    match = re.search(r"([\d,]+) parameters", MODEL.description)
    assert match, "the description states the parameter count"
    return int(match.group(1).replace(",", ""))


def test_about_one_billion_parameters_as_the_file_states():
    params = sum(layer.cost.params for layer in resolve_layers(MODEL, 1))
    assert abs(params - 1e9) <= 0.15 * 1e9
    assert params == _stated_params()


def test_three_stages_of_filtering_pooling_and_contrast_normalisation():
    kinds = [layer.kind for layer in MODEL.layers if not layer.name.startswith("decode")]
    assert kinds == ["locally_connected", "l2pool2d", "lcn"] * 3
    first = resolve_layers(MODEL, 1)[0]
    assert first.in_shapes[0] == (3, 200, 200) and first.cost.out_shape[0] == 8


def test_each_decoder_has_exactly_its_encoders_weights():
    layers = {layer.name: layer for layer in resolve_layers(MODEL, 1)}
    for stage in "123":
        encoder = layers[f"filter{stage}"]
        positions = encoder.cost.out_shape[1] * encoder.cost.out_shape[2]
        encoder_weights = encoder.cost.params - 8 * positions  # less one bias per unit
        assert layers[f"decode{stage}"].cost.params == encoder_weights


def test_every_assumption_is_stated_and_the_graph_builds():
    assert len(MODEL.assumptions) >= 5 and MODEL.sources
    graph = build_graph(MODEL, 2, "train", "fp32")
    assert graph.params == _stated_params()
