"""Splitting one layer's work over P devices by image locality (DistBelief, Coates et al.).

Each device owns a tile of every feature map: the maps are cut into a grid of rows x cols
tiles, the same grid for every layer. A device computes its tile's share of each op (work,
bytes and the GEMM's independent dimension divided by P). A windowed layer (kernel k,
stride s, k > s) needs a border of k - s rows and columns of its input from the
neighbouring tiles below and to the right (`halo`); backward sends the gradient of that
border back. A layer with flat input (a fully connected layer) needs the whole input: an
all-gather forward and a reduce-scatter of the input gradient backward, its weights split
by output feature. Shared convolution weights get a gradient all-reduce over the group.
When the border is wider than a tile (many small tiles), its bytes are counted in full but
taken from the adjacent tile only.
"""

from __future__ import annotations

import math
from dataclasses import replace

from workloads.builder import ResolvedLayer
from workloads.ops import AttrValue, Gemm, Op


def grid(parts: int) -> tuple[int, int]:
    """The most nearly square rows x cols with rows * cols == parts (rows <= cols)."""
    rows = max(r for r in range(1, math.isqrt(parts) + 1) if parts % r == 0)
    return rows, parts // rows


def _split_gemm(g: Gemm, parts: int) -> Gemm:
    """Split the largest independent dimension (batch of products, rows or columns)."""
    sizes = {"batch": g.batch, "m": g.m, "n": g.n}
    dim = max(sizes, key=lambda d: sizes[d])
    return replace(g, **{dim: math.ceil(sizes[dim] / parts)})


# op attributes that grow with the op's size: a device's share holds 1/parts of each (a
# copy's bytes, a convolution's layout transposes, its Winograd tiles)
SIZED_ATTRS = ("bytes_moved", "layout_bytes", "winograd_tiles")


def _share(key: str, value: AttrValue, parts: int) -> AttrValue:
    if key not in SIZED_ATTRS or not isinstance(value, int | float) or isinstance(value, bool):
        return value
    share = value / parts
    return float(math.ceil(share)) if key == "winograd_tiles" else share  # whole tiles


def shard_op(op: Op, parts: int) -> Op:
    """This device's 1/parts of an op (same name, so graph edges still apply)."""
    if parts == 1:
        return op
    gemm = _split_gemm(op.gemm, parts) if op.gemm is not None else None
    flops = gemm.flops if gemm is not None else op.flops / parts
    attrs = tuple((k, _share(k, v, parts)) for k, v in op.attrs)
    return replace(op, flops=flops, bytes_read=op.bytes_read / parts,
                   bytes_written=op.bytes_written / parts,
                   work_items=max(1, math.ceil(op.work_items / parts)),
                   param_bytes=op.param_bytes / parts, gemm=gemm, attrs=attrs)


def _window(layer: ResolvedLayer, model_layers: dict[str, dict]) -> tuple[int, int]:
    """(kernel, stride) of a windowed layer, (1, 1) otherwise."""
    args = model_layers.get(layer.name, {})
    if "kernel" not in args:
        return 1, 1
    k = args["kernel"] if isinstance(args["kernel"], int) else max(args["kernel"])
    stride = args.get("stride", k if layer.kind in ("maxpool2d", "avgpool2d", "l2pool2d") else 1)
    s = stride if isinstance(stride, int) else min(stride)
    if layer.kind == "lcn":
        s = 1
    return k, s


def halo_pairs(layer: ResolvedLayer, model_layers: dict[str, dict], group: list[int],
               batch: int, act_bytes: int) -> tuple[tuple[int, int, float], ...]:
    """(sender, receiver, bytes): the border of this layer's input each tile needs from the
    tile below it (h rows, with the corner) and from the tile to its right (h columns)."""
    shape = layer.in_shapes[0]
    if len(shape) != 3 or len(group) == 1:
        return ()
    k, s = _window(layer, model_layers)
    h = k - s
    if h <= 0:
        return ()
    c, height, width = shape
    rows, cols = grid(len(group))
    tile_h, tile_w = height / rows, width / cols
    below = batch * c * h * (tile_w + h) * act_bytes
    right = batch * c * tile_h * h * act_bytes
    pairs = []
    for i in range(rows):
        for j in range(cols):
            me = group[i * cols + j]
            if i + 1 < rows:
                pairs.append((group[(i + 1) * cols + j], me, below))
            if j + 1 < cols:
                pairs.append((group[i * cols + j + 1], me, right))
    return tuple(pairs)


def interior(group: list[int]) -> int:
    """A tile with every neighbour it can have (the slowest): the grid's middle one."""
    rows, cols = grid(len(group))
    return group[(rows // 2) * cols + cols // 2] if len(group) > 1 else group[0]
