"""ONNX nodes -> our layer definitions, for `workloads.onnx_import`: the checked,
shape-inferred graph (`Graph`: per-sample shapes, weights, constants, the learned tensors
each static tensor comes from) and one function per operator family (`ONNX_KINDS`); a node
we have no formula for raises `Unsupported` with the name the error lists.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from simulator.core.errors import UserError
from workloads.importers import batch_axis, per_sample
from workloads.onnx_attention import Match, attention_layer
from workloads.onnx_static import known_shapes

UNARY = {"Sigmoid", "Erf", "Sqrt", "Exp", "Neg", "Cast", "Reciprocal", "Abs", "Pow",
         "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Log", "Where", "Not", "Equal",
         "Transpose", "Concat", "Slice", "Expand", "Tile", "ReduceMean", "ReduceSum",
         "ReduceMax", "Sub", "Mul", "Div", "Max", "Min", "Pad"}
VIEWS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten"}
ONNX_KINDS = {"Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "Tanh", "MaxPool",
              "AveragePool", "GlobalAveragePool", "BatchNormalization", "Dropout", "Softmax",
              "LayerNormalization", "Gelu", "Gather", "Identity", "Attention", *VIEWS, *UNARY}
SHAPE_OPS = {"Shape", "Constant", "ConstantOfShape", "Range", "Size"}


class Graph:
    """The checked, shape-inferred graph: per-sample shapes, weights, constant tensors."""

    def __init__(self, onnx: Any, model: Any, where: str, doubled: Any | None):
        self.onnx, self.where = onnx, where
        graph = model.graph
        self.weights = {t.name: tuple(t.dims) for t in graph.initializer}
        self.shapes = known_shapes(graph)
        self.doubled = known_shapes(doubled.graph) if doubled is not None else None
        for node in graph.node:  # the exporter's copies of shared weights
            if node.op_type == "Identity" and node.input[0] in self.weights:
                self.weights[node.output[0]] = self.weights[node.input[0]]
        self.values = {t.name: t for t in graph.initializer}
        self.values.update({n.output[0]: n.attribute[0].t for n in graph.node
                            if n.op_type == "Constant" and n.attribute[0].name == "value"})
        self.static = set(self.weights)
        # the learned tensors (float initializers) each static tensor is computed from
        self.learned = {t.name: {t.name} for t in graph.initializer
                        if t.data_type in (1, 10, 11, 16) and math.prod(t.dims) > 1}
        self.sizes = {t.name: math.prod(t.dims) for t in graph.initializer}
        for node in graph.node:  # constants, shapes and what is computed from them only
            if node.op_type in SHAPE_OPS or all(i in self.static for i in node.input if i):
                self.static.update(node.output)
                found = set().union(*(self.learned.get(i, set()) for i in node.input))
                self.learned.update({o: found for o in node.output if found})
        self.consumers = Counter(i for n in graph.node for i in n.input)

    def constant(self, tensor: str) -> Any:
        """The value of a constant tensor (an initializer or a Constant node's), else None."""
        found = self.values.get(tensor)
        return None if found is None else self.onnx.numpy_helper.to_array(found)

    def attrs(self, node: Any) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def per_sample(self, tensor: str) -> tuple[int, ...]:
        """The tensor's shape for one sample: the batch axis (the one that doubles from a
        batch of one to two, where the batch is symbolic; else the first) taken out."""
        shape = self.shapes.get(tensor)
        sample = shape[1:] if shape and self.doubled is None else per_sample(
            shape, self.doubled.get(tensor) if self.doubled is not None else None)
        if not shape or not sample or min(sample) < 1:
            raise UserError(f"{self.where}: shape inference gives tensor '{tensor}' no "
                            f"per-sample size ({list(shape) if shape else 'unknown'})")
        return sample

    def batch_axis(self, tensor: str) -> int | None:
        """The batch's axis of a tensor, None where the batch is folded into another."""
        if self.doubled is None:
            return 0
        return batch_axis(self.shapes.get(tensor), self.doubled.get(tensor))


def _pads(attrs: dict[str, Any], rank: int) -> list[int]:
    pads = list(attrs.get("pads", [0] * 2 * rank))
    return [max(pads[i], pads[i + rank]) for i in range(rank)]


def _conv(g: Graph, node: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    cout, _cin, kh, kw = g.weights[node.input[1]]
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise Unsupported("Conv (dilated)")
    return {"kind": "conv2d", "out_channels": cout, "kernel": [kh, kw],
            "stride": list(attrs.get("strides", [1, 1])), "padding": _pads(attrs, 2),
            "groups": attrs.get("group", 1), "bias": len(node.input) > 2 and bool(node.input[2])}


def _pool(op: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """MaxPool / AveragePool, with ceil_mode (PyTorch's rule, the ONNX spec's: a last window
    that would start in the right padding is dropped)."""
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise Unsupported(f"{op} (dilated)")
    kind = "maxpool2d" if op == "MaxPool" else "avgpool2d"
    kernel = list(attrs["kernel_shape"])
    layer = {"kind": kind, "kernel": kernel, "stride": list(attrs.get("strides", kernel)),
             "padding": _pads(attrs, 2)}
    return {**layer, "ceil_mode": True} if attrs.get("ceil_mode", 0) else layer


class Unsupported(Exception):
    """A node we have no formula for (its operator, as the error lists it)."""


def _matmul(g: Graph, node: Any, acts: list[str]) -> dict[str, Any]:
    weight = node.input[1]
    if len(acts) == 2:
        return {"kind": "matmul"}
    if weight in g.weights and len(g.weights[weight]) == 2 and acts == [node.input[0]]:
        return {"kind": "linear", "out_features": g.weights[weight][1], "bias": False}
    raise Unsupported("MatMul (by a constant that is not a weight matrix)")


def _gemm(g: Graph, node: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    dims = g.weights.get(node.input[1])
    if dims is None or attrs.get("transA", 0):
        raise Unsupported("Gemm (without a weight matrix)")
    out = dims[0] if attrs.get("transB", 0) else dims[1]
    return {"kind": "linear", "out_features": out, "bias": len(node.input) > 2}


def layer_definition(g: Graph, node: Any, acts: list[str], out: str) -> dict[str, Any]:
    """Our layer definition (kind and arguments) for one ONNX node of output `out`."""
    op, attrs = node.op_type, g.attrs(node)
    if op == "Conv":
        return _conv(g, node, attrs)
    if op == "Gemm":
        return _gemm(g, node, attrs)
    if op == "MatMul":
        return _matmul(g, node, acts)
    if op == "Add" and len(acts) == 2 and g.per_sample(acts[0]) == g.per_sample(acts[1]):
        return {"kind": "add"}
    if op == "Clip" and _clip_is_relu6(g, node):
        return {"kind": "relu6"}
    if op in ("MaxPool", "AveragePool"):
        return _pool(op, attrs)
    if op == "Gather":
        return _gather(g, node, acts, attrs, out)
    if op == "Attention":
        return _attention_op(g, node, acts, attrs)
    simple = {"Relu": "relu", "Tanh": "tanh", "BatchNormalization": "batchnorm2d",
              "Softmax": "softmax", "LayerNormalization": "layernorm", "Gelu": "gelu",
              "Dropout": "dropout"}
    if op in simple:
        return {"kind": simple[op]}
    if op == "GlobalAveragePool":
        return {"kind": "adaptive_avgpool2d", "output_size": 1}
    if op == "Flatten" and len(g.per_sample(out)) == 1:
        return {"kind": "flatten"}
    if op in VIEWS:
        return {"kind": "reshape", "shape": list(g.per_sample(out))}
    if op in UNARY or op in ("Add", "Clip"):
        return {"kind": "elementwise", "shape": list(g.per_sample(out)), "op": op.lower()}
    raise Unsupported(op)


def _gather(g: Graph, node: Any, acts: list[str], attrs: dict[str, Any],
            out: str) -> dict[str, Any]:
    """Rows of a weight picked by ids (an embedding); or a part of an activation picked by
    constant indices: one position of a sample's first axis (ViT's class token, x[:, 0]) is
    `select`, other parts a memory-bound gather kernel."""
    data, indices = node.input[0], node.input[1]
    if data in g.weights and acts == [indices] and len(g.weights[data]) == 2:
        rows, dim = g.weights[data]
        return {"kind": "embedding", "num_embeddings": rows, "embedding_dim": dim}
    index = g.constant(indices)
    if acts != [data] or index is None:
        raise Unsupported("Gather (indices computed from the input)")
    shape, batch = g.per_sample(data), g.batch_axis(data)
    axis = int(attrs.get("axis", 0))
    axis += len(shape) + 1 if axis < 0 else 0
    if batch is None or axis == batch:
        raise Unsupported("Gather (along the batch axis)")
    axis -= 1 if axis > batch else 0  # the axis of a sample's shape
    if index.ndim == 0 and axis == 0 and -shape[0] <= int(index) < shape[0]:
        return {"kind": "select", "index": int(index) % shape[0]}
    return {"kind": "elementwise", "shape": list(g.per_sample(out)), "op": "gather"}


def _attention_op(g: Graph, node: Any, acts: list[str], attrs: dict[str, Any]) -> dict[str, Any]:
    """Opset 23's Attention (the fused scaled dot-product attention) on (batch, heads, seq,
    head_dim), or (batch, seq, d) with q_num_heads: `attention`, `flash`."""
    if len(acts) != 3 or any(i for i in node.input[3:]):
        raise Unsupported("Attention (attn_mask or past key and value)")
    if any(g.consumers[o] for o in node.output[1:] if o):
        raise Unsupported("Attention (present key and value or scores used)")
    if attrs.get("softcap", 0.0) or attrs.get("kv_num_heads", 0) != attrs.get("q_num_heads", 0):
        raise Unsupported("Attention (softcap or grouped keys)")
    shapes = {g.per_sample(a) for a in acts}
    (shape,) = shapes if len(shapes) == 1 else (None,)
    if shape is None or len(shape) not in (2, 3):
        raise Unsupported("Attention (keys or values of another shape than the queries)")
    layer = attention_layer(shape, bool(attrs.get("is_causal", 0)), flash=True)
    return {**layer, "heads": int(attrs.get("q_num_heads", 1))} if len(shape) == 2 else layer


def attention_shapes(g: Graph, match: Match) -> tuple[int, ...] | None:
    """The per-sample shape of a matched attention's q, k and v, where they agree and are
    (heads, seq, head_dim) or (seq, d); else None (the pattern's nodes stay as they are)."""
    try:
        shapes = {g.per_sample(t) for t in (match.q, match.k, match.v)}
    except UserError:
        return None
    (shape,) = shapes if len(shapes) == 1 else (None,)
    return shape if shape is not None and len(shape) in (2, 3) else None


def _clip_is_relu6(g: Graph, node: Any) -> bool:
    attrs = g.attrs(node)
    return (attrs.get("min", 0.0), attrs.get("max", 6.0)) == (0.0, 6.0) and len(node.input) == 1
