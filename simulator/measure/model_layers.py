"""A catalog model's layer list, read from its YAML file, with each layer's shapes.

Holds:
- `Layer`: one layer's name, kind, arguments and per-sample input and output shapes.
- `model_layers(name)`: the layers of `workloads/models/NAME.yaml`, in file order (cached).
- `layers_of_kind(name, kind)`: the same, filtered by kind.

This is how simulator.measure learns VGG16's shapes: the model's one definition is its YAML
file. It reads the file with PyYAML and propagates shapes itself, without
`workloads.model_def.load_model`, because that needs pydantic, which the GPU machines the
benchmarks run on lack; tests/test_measure_shapes.py checks, layer by layer, that this
reading gives the same names, kinds and shapes as `load_model` with
`workloads.builder.resolve_layers`. Only sequential models (no `inputs`) of the kinds in
`_SHAPE_RULES` are supported. PyYAML is imported on first use, so importing this module
needs the standard library alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, NamedTuple

Shape = tuple[int, ...]


class Layer(NamedTuple):
    name: str
    kind: str
    # read-only: the YAML entry less name and kind, e.g. {"out_channels": 64, ...}
    args: Mapping[str, Any]
    in_shape: Shape  # per sample: (C, H, W) for images, (F,) for flat features
    out_shape: Shape


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _window_hw(shape: Shape, kernel: Any, stride: Any, padding: Any) -> tuple[int, int]:
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    return (shape[1] + 2 * ph - kh) // sh + 1, (shape[2] + 2 * pw - kw) // sw + 1


def _conv2d(shape: Shape, args: Mapping[str, Any]) -> Shape:
    hw = _window_hw(shape, args["kernel"], args.get("stride", 1), args.get("padding", 0))
    return (int(args["out_channels"]), *hw)


def _pool2d(shape: Shape, args: Mapping[str, Any]) -> Shape:
    kernel = args["kernel"]
    hw = _window_hw(shape, kernel, args.get("stride", kernel), args.get("padding", 0))
    return (shape[0], *hw)


def _adaptive_pool2d(shape: Shape, args: Mapping[str, Any]) -> Shape:
    return (shape[0], *_pair(args["output_size"]))


def _same(shape: Shape, args: Mapping[str, Any]) -> Shape:
    return shape


_SHAPE_RULES = {
    "conv2d": _conv2d,
    "maxpool2d": _pool2d,
    "avgpool2d": _pool2d,
    "adaptive_avgpool2d": _adaptive_pool2d,
    "flatten": lambda shape, args: (math.prod(shape),),
    "linear": lambda shape, args: (*shape[:-1], int(args["out_features"])),
    "relu": _same,
    "dropout": _same,
    "batchnorm2d": _same,
}


def _model_data(name: str) -> dict[str, Any]:
    import yaml

    text = (resources.files("workloads") / "models" / f"{name}.yaml").read_text()
    return yaml.safe_load(text)


@functools.cache
def model_layers(name: str = "vgg16") -> tuple[Layer, ...]:
    """The layers of catalog model `name` with their shapes, in the order of its file."""
    data = _model_data(name)
    shape: Shape = tuple(int(d) for d in data["input_shape"])
    layers = []
    for entry in data["layers"]:
        entry = dict(entry)
        layer_name, kind = entry.pop("name"), entry.pop("kind")
        if "inputs" in entry or kind not in _SHAPE_RULES:
            raise ValueError(f"model {name}: layer {layer_name} ({kind}) is not supported "
                             "here: sequential layers of kinds " + ", ".join(_SHAPE_RULES))
        out_shape = _SHAPE_RULES[kind](shape, entry)
        layers.append(Layer(layer_name, kind, MappingProxyType(entry), shape, out_shape))
        shape = out_shape
    return tuple(layers)


def layers_of_kind(kind: str, name: str = "vgg16") -> tuple[Layer, ...]:
    """The layers of model `name` whose kind is `kind`, in order."""
    return tuple(layer for layer in model_layers(name) if layer.kind == kind)
