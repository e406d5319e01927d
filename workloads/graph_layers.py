"""Layer kinds that imported graphs (ONNX, torch.fx) need beside the named ones: `reshape`,
a view to any `shape` of as many elements (no kernel); `slice`, a view of a part of its
input (torch's chunk, split, narrow and indexing); and `elementwise`, a memory-bound kernel
that reads its inputs and writes `shape` (transpose copies, concatenation, arithmetic with
broadcasting, and, where the user asks for it, operators we have no formula for), `op`
naming its kernel, with `params` for a learned tensor it reads (ViT's position embedding
added, ConvNeXt's layer scale multiplied).
"""

from __future__ import annotations

import math
from typing import Any

from workloads.layers import LayerCost, Shape, Work, layer_kinds


def _shape(args: dict[str, Any]) -> Shape:
    shape = tuple(int(d) for d in args["shape"])
    if not shape or min(shape) < 1:
        raise ValueError(f"shape must be positive sizes, got {list(shape)}")
    return shape


@layer_kinds.register("reshape")
def reshape(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    if len(shapes) != 1:
        raise ValueError(f"reshape needs one input, got {len(shapes)}")
    shape = _shape(args)
    if math.prod(shape) != math.prod(shapes[0]):
        raise ValueError(f"cannot view {list(shapes[0])} as {list(shape)}: "
                         f"{math.prod(shapes[0])} elements, not {math.prod(shape)}")
    return LayerCost(shape, 0, None, None, None, 0.0)


@layer_kinds.register("slice")
def slice_view(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """A part of its one input, as a view (no kernel); backward copies the part's gradient
    into the input's (split's backward concatenates the parts)."""
    if len(shapes) != 1:
        raise ValueError(f"slice needs one input, got {len(shapes)}")
    shape = _shape(args)
    if math.prod(shape) > math.prod(shapes[0]):
        raise ValueError(f"a slice of {list(shapes[0])} cannot have shape {list(shape)}: "
                         "more elements than its input")
    n = batch * math.prod(shape)
    bwd = Work("elementwise", 0.0, n, n, n, kernel="slice_bwd")
    return LayerCost(shape, 0, None, bwd, None, 0.0)


@layer_kinds.register("elementwise")
def elementwise_op(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """One pass over the inputs and the output (one flop an element); backward one pass
    that reads the output's gradient and the inputs and writes each input's gradient. A
    learned tensor of `params` elements is read too, and its gradient reduced over the
    batch from the output's gradient and the inputs."""
    shape = _shape(args)
    kernel = str(args.get("op") or "elementwise")
    params = int(args.get("params", 0))
    if params < 0:
        raise ValueError(f"params must be 0 or more, got {params}")
    n_in = batch * sum(math.prod(s) for s in shapes)
    n_out = batch * math.prod(shape)
    fwd = Work("elementwise", float(n_out), n_in, n_out, n_out, weight_read=params,
               kernel=kernel)
    bwd = Work("elementwise", float(n_in), n_out + n_in, n_in, max(n_in, 1),
               kernel=f"{kernel}_bwd")
    bwd_weight = Work("reduction", float(n_out), n_out + n_in, 0, params, weight_write=params,
                      kernel=f"{kernel}_bwd") if params else None
    return LayerCost(shape, params, fwd, bwd, bwd_weight, float(n_in))
