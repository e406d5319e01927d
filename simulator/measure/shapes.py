"""Layer shapes of VGG16 (ImageNet, 224x224) and the GEMMs they turn into.

Convolutions are 3x3, stride 1, padding 1, so output size = input size. As implicit GEMMs:
forward M=N*H*W, N=Cout, K=Cin*9; backward-data M=N*H*W, N=Cin, K=Cout*9;
backward-weight M=Cout, N=Cin*9, K=N*H*W. Fully connected y = x W^T with batch B:
forward M=B, N=out, K=in; backward-data M=B, N=in, K=out; backward-weight M=out, N=in, K=B.
"""

from __future__ import annotations

from typing import NamedTuple


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


# All 13 convolutions; layers that repeat an earlier shape (conv3_3, conv4_3, conv5_2,
# conv5_3) are marked so that sweeps can time each distinct shape once.
VGG16_CONVS: tuple[ConvLayer, ...] = (
    ConvLayer("conv1_1", 3, 64, 224),
    ConvLayer("conv1_2", 64, 64, 224),
    ConvLayer("conv2_1", 64, 128, 112),
    ConvLayer("conv2_2", 128, 128, 112),
    ConvLayer("conv3_1", 128, 256, 56),
    ConvLayer("conv3_2", 256, 256, 56),
    ConvLayer("conv3_3", 256, 256, 56),
    ConvLayer("conv4_1", 256, 512, 28),
    ConvLayer("conv4_2", 512, 512, 28),
    ConvLayer("conv4_3", 512, 512, 28),
    ConvLayer("conv5_1", 512, 512, 14),
    ConvLayer("conv5_2", 512, 512, 14),
    ConvLayer("conv5_3", 512, 512, 14),
)
VGG16_DISTINCT_CONVS = tuple(
    layer
    for i, layer in enumerate(VGG16_CONVS)
    if layer[1:] not in [c[1:] for c in VGG16_CONVS[:i]]
)
VGG16_FCS: tuple[tuple[str, int, int], ...] = (
    ("fc6", 25088, 4096),
    ("fc7", 4096, 4096),
    ("fc8", 4096, 1000),
)
# 2x2 stride-2 max pooling after each block: (name, channels, input size).
VGG16_POOLS: tuple[tuple[str, int, int], ...] = (
    ("pool1", 64, 224),
    ("pool2", 128, 112),
    ("pool3", 256, 56),
    ("pool4", 512, 28),
    ("pool5", 512, 14),
)


def conv_layer(name: str) -> ConvLayer:
    """The VGG16 convolution called `name` (e.g. "conv3_1")."""
    for layer in VGG16_CONVS:
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
