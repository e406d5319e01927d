"""Layer shapes of VGG16 (ImageNet, 224x224) and the GEMMs they turn into.

Holds:
- `ConvLayer`, `GemmShape`: a 3x3 convolution's channels and size; a GEMM's m, n, k.
- `vgg16_convs()`, `vgg16_distinct_convs()`, `vgg16_fcs()`, `vgg16_pools()`: VGG16's
  convolutions, those with a shape not seen before, fully connected and pooling layers.
- `conv_layer(name)`: one convolution by name.
- `conv_gemms`, `fc_gemms`, `square_gemms`: the GEMMs of a convolution, an FC layer, squares.

The layers come from the one definition of VGG16, workloads/models/vgg16.yaml (through
`simulator.measure.model_layers`), read on first call and cached.

Convolutions are 3x3, stride 1, padding 1, so output size = input size. As implicit GEMMs:
forward M=N*H*W, N=Cout, K=Cin*9; backward-data M=N*H*W, N=Cin, K=Cout*9;
backward-weight M=Cout, N=Cin*9, K=N*H*W. Fully connected y = x W^T with batch B:
forward M=B, N=out, K=in; backward-data M=B, N=in, K=out; backward-weight M=out, N=in, K=B.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

from simulator.measure.model_layers import Layer, layers_of_kind


class ConvLayer(NamedTuple):
    name: str
    in_channels: int
    out_channels: int
    size: int  # height = width of input and output


class GemmShape(NamedTuple):
    label: str
    m: int
    n: int
    k: int


def _conv(layer: Layer) -> ConvLayer:
    """A 3x3, stride 1, padding 1 convolution of square input (what the GEMM rules assume)."""
    c, h, w = layer.in_shape
    same = (layer.args.get("stride", 1), layer.args.get("padding", 0)) == (1, 1)
    if layer.args["kernel"] != 3 or not same or h != w:
        raise ValueError(f"{layer.name}: not a 3x3 'same' convolution on a square input")
    return ConvLayer(layer.name, c, layer.out_shape[0], h)


@functools.cache
def vgg16_convs() -> tuple[ConvLayer, ...]:
    """All 13 convolutions, in order."""
    return tuple(_conv(layer) for layer in layers_of_kind("conv2d"))


@functools.cache
def vgg16_distinct_convs() -> tuple[ConvLayer, ...]:
    """The convolutions whose shape no earlier one has (so sweeps time each shape once):
    all but conv3_3, conv4_3, conv5_2 and conv5_3."""
    convs = vgg16_convs()
    return tuple(layer for i, layer in enumerate(convs)
                 if layer[1:] not in [c[1:] for c in convs[:i]])


@functools.cache
def vgg16_fcs() -> tuple[tuple[str, int, int], ...]:
    """(name, input features, output features) of the fully connected layers."""
    return tuple((layer.name, math.prod(layer.in_shape), layer.out_shape[0])
                 for layer in layers_of_kind("linear"))


@functools.cache
def vgg16_pools() -> tuple[tuple[str, int, int], ...]:
    """(name, channels, input size) of the 2x2 stride-2 max pools after each block."""
    return tuple((layer.name, layer.in_shape[0], layer.in_shape[1])
                 for layer in layers_of_kind("maxpool2d"))


def conv_layer(name: str) -> ConvLayer:
    """The VGG16 convolution called `name` (e.g. "conv3_1")."""
    for layer in vgg16_convs():
        if layer.name == name:
            return layer
    raise KeyError(f"no VGG16 convolution named {name!r}")


def conv_gemms(layer: ConvLayer, batch: int) -> list[GemmShape]:
    """The three implicit GEMMs (forward, backward-data, backward-weight) of one convolution."""
    pixels = batch * layer.size * layer.size
    cin, cout = layer.in_channels, layer.out_channels
    stem = f"vgg16.{layer.name}"
    return [
        GemmShape(f"{stem}.fwd.b{batch}", pixels, cout, cin * 9),
        GemmShape(f"{stem}.bwd_data.b{batch}", pixels, cin, cout * 9),
        GemmShape(f"{stem}.bwd_weight.b{batch}", cout, cin * 9, pixels),
    ]


def fc_gemms(name: str, n_in: int, n_out: int, batch: int) -> list[GemmShape]:
    """The three GEMMs of a fully connected layer y = x W^T at `batch` samples."""
    stem = f"vgg16.{name}"
    return [
        GemmShape(f"{stem}.fwd.b{batch}", batch, n_out, n_in),
        GemmShape(f"{stem}.bwd_data.b{batch}", batch, n_in, n_out),
        GemmShape(f"{stem}.bwd_weight.b{batch}", n_out, n_in, batch),
    ]


def square_gemms(sizes: tuple[int, ...]) -> list[GemmShape]:
    return [GemmShape("square", s, s, s) for s in sizes]
