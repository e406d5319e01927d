"""Where VGG16's parameters live in the CuPy step's flat buffers.

Holds:
- `step_layers()`: the step's layer list, workloads/models/vgg16.yaml's layers.
- `Param`: one layer's weight (out, fan_in) and bias (out,) inside the flat buffers.
- `param_layout(layers)`: each weighted layer's `Param`, in layer order, and the count.

Convolutions are 3x3 with padding 1 (the step's im2col kernels), so a conv's fan-in is
9 * input channels; a linear layer's is its flattened input size.
"""

from __future__ import annotations

import math
from typing import Any

from simulator.measure.model_layers import Layer, model_layers


def step_layers() -> tuple[Layer, ...]:
    """The layers of the step: VGG16's, from its model file."""
    return model_layers("vgg16")


class Param:
    """One layer's weight (out, fan_in) and bias (out,) inside the flat buffers."""

    def __init__(self, offset: int, out: int, fan_in: int) -> None:
        self.offset, self.out, self.fan_in = offset, out, fan_in
        self.wsize = out * fan_in
        self.size = self.wsize + out

    def slice(self, flat: Any) -> Any:
        return flat[self.offset:self.offset + self.size]

    def weight(self, flat: Any) -> Any:
        return flat[self.offset:self.offset + self.wsize].reshape(self.out, self.fan_in)

    def bias(self, flat: Any) -> Any:
        return flat[self.offset + self.wsize:self.offset + self.size]


def _fan_in(layer: Layer) -> int | None:
    """Inputs per output of a layer with weights (3x3 patches for a conv), else None."""
    if layer.kind == "conv2d":
        if layer.args["kernel"] != 3 or layer.args.get("padding") != 1:
            raise ValueError(f"{layer.name}: the step's im2col kernels are 3x3, padding 1")
        return 9 * layer.in_shape[0]
    if layer.kind == "linear":
        return math.prod(layer.in_shape)
    return None


def param_layout(layers: tuple[Layer, ...]) -> tuple[dict[str, Param], int]:
    """Each weighted layer's place in the flat buffers, and the parameter count."""
    params: dict[str, Param] = {}
    offset = 0
    for layer in layers:
        fan_in = _fan_in(layer)
        if fan_in is not None:
            params[layer.name] = Param(offset, layer.out_shape[0], fan_in)
            offset += params[layer.name].size
    return params, offset
