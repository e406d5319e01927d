"""ONNX import: `--model FILE.onnx` -> a ModelDef of our layer kinds (the `onnx` package,
`pip install 'simulator[onnx]'`).

The file is checked (onnx.checker), its input's symbolic dimensions are bound — the first
(the batch: the builder scales per-sample shapes by the workload's batch) to 1, every other
one to the workload's seq_len, which must then be given — and onnx's shape inference sizes
every tensor. Shapes are per sample (the first dimension dropped). Each node becomes a layer
of ours (`ONNX_KINDS` below; a MatMul by a weight followed by the Add of a bias is one linear
layer); nodes that compute only on constants and shapes (Shape, Constant, the index
arithmetic of a Reshape) cost nothing. Operators without a formula are one error listing
them by name and count, or, with `unsupported_as_elementwise`, memory-bound elementwise
kernels with a warning naming them. Every layer's output shape is checked against onnx's.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from workloads.importers import Importer, ImportOptions, ModelWarning, require
from workloads.model_def import MODEL_INPUT, RESERVED_LAYER_NAMES, ModelDef, parse_model
from workloads.resolve import resolve_layers

MAX_ONNX_BYTES = 4 * 2**30  # a protobuf file is at most 2 GiB; weights may be external
UNARY = {"Sigmoid", "Erf", "Sqrt", "Exp", "Neg", "Cast", "Reciprocal", "Abs", "Pow",
         "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Log", "Where", "Not", "Equal",
         "Transpose", "Concat", "Slice", "Expand", "Tile", "ReduceMean", "ReduceSum",
         "ReduceMax", "Sub", "Mul", "Div", "Max", "Min", "Pad"}
VIEWS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten"}
ONNX_KINDS = {"Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "Tanh", "MaxPool",
              "AveragePool", "GlobalAveragePool", "BatchNormalization", "Dropout", "Softmax",
              "LayerNormalization", "Gelu", "Gather", "Identity", *VIEWS, *UNARY}
SHAPE_OPS = {"Shape", "Constant", "ConstantOfShape", "Range", "Size"}


class _Graph:
    """The checked, shape-inferred graph: per-sample shapes, weights, constant tensors."""

    def __init__(self, onnx: Any, model: Any, where: str):
        self.onnx, self.where = onnx, where
        graph = model.graph
        self.weights = {t.name: tuple(t.dims) for t in graph.initializer}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for info in [*graph.input, *graph.value_info, *graph.output]:
            dims = info.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                self.shapes[info.name] = tuple(d.dim_value for d in dims)
        self.static = set(self.weights)
        for node in graph.node:  # constants, shapes and what is computed from them only
            if node.op_type in SHAPE_OPS or all(i in self.static for i in node.input if i):
                self.static.update(node.output)
        self.consumers = Counter(i for n in graph.node for i in n.input)

    def attrs(self, node: Any) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def per_sample(self, tensor: str) -> tuple[int, ...]:
        shape = self.shapes.get(tensor)
        if not shape or len(shape) < 2 or min(shape) < 1:
            raise UserError(f"{self.where}: shape inference gives tensor '{tensor}' no "
                            f"per-sample size ({list(shape) if shape else 'unknown'})")
        return shape[1:]


def _read(path: str) -> Any:
    onnx = require("onnx", path, "onnx")
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: no such ONNX file")
    if file.stat().st_size > MAX_ONNX_BYTES:
        raise UserError(f"{path}: larger than {MAX_ONNX_BYTES:,} bytes")
    try:
        model = onnx.load(str(file), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as err:  # DecodeError, ValidationError, ...: the file is not valid ONNX
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not a valid ONNX model: {first}") from None
    return onnx, model


def _bind(model: Any, where: str, seq_len: int | None) -> bool:
    """Concrete sizes for the input's symbolic dimensions (and the same symbols elsewhere);
    whether a sequence dimension took seq_len."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise UserError(f"{where}: one input is supported, the model has "
                        f"{len(inputs)} ({', '.join(i.name for i in inputs)})")
    symbols: dict[str, int] = {}
    sequence = False
    for j, dim in enumerate(inputs[0].type.tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            continue
        sequence = sequence or j > 0
        if j > 0 and seq_len is None:
            raise UserError(f"{where}: dimension {j} of input '{inputs[0].name}' is symbolic "
                            f"('{dim.dim_param}'): give --seq-len (workload.seq_len) for it")
        symbols[dim.dim_param] = int(seq_len or 0) if j else 1
        dim.dim_value = symbols[dim.dim_param]  # the batch: shapes are made per sample
    for info in [*model.graph.output, *model.graph.value_info]:
        for dim in info.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in symbols:
                dim.dim_value = symbols[dim.dim_param]
            elif dim.HasField("dim_param"):
                dim.Clear()  # left to shape inference
    return sequence


def _name(node: Any, index: int, taken: set[str]) -> str:
    name = re.sub(r"[\x00-\x1f\x7f]", "_", node.name or f"{node.op_type}_{index}")[:120]
    if name in taken or name in RESERVED_LAYER_NAMES:
        name = f"{name[:100]}_{index}"
    taken.add(name)
    return name


def _pads(attrs: dict[str, Any], rank: int) -> list[int]:
    pads = list(attrs.get("pads", [0] * 2 * rank))
    return [max(pads[i], pads[i + rank]) for i in range(rank)]


def _conv(g: _Graph, node: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    cout, _cin, kh, kw = g.weights[node.input[1]]
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise _Unsupported("Conv (dilated)")
    return {"kind": "conv2d", "out_channels": cout, "kernel": [kh, kw],
            "stride": list(attrs.get("strides", [1, 1])), "padding": _pads(attrs, 2),
            "groups": attrs.get("group", 1), "bias": len(node.input) > 2 and bool(node.input[2])}


def _pool(kind: str, attrs: dict[str, Any]) -> dict[str, Any]:
    kernel = list(attrs["kernel_shape"])
    return {"kind": kind, "kernel": kernel, "stride": list(attrs.get("strides", kernel)),
            "padding": _pads(attrs, 2)}


class _Unsupported(Exception):
    """A node we have no formula for (its operator, as the error lists it)."""


def _matmul(g: _Graph, node: Any, acts: list[str]) -> dict[str, Any]:
    weight = node.input[1]
    if len(acts) == 2:
        return {"kind": "matmul"}
    if weight in g.weights and len(g.weights[weight]) == 2 and acts == [node.input[0]]:
        return {"kind": "linear", "out_features": g.weights[weight][1], "bias": False}
    raise _Unsupported("MatMul (by a constant that is not a weight matrix)")


def _gemm(g: _Graph, node: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    dims = g.weights.get(node.input[1])
    if dims is None or attrs.get("transA", 0):
        raise _Unsupported("Gemm (without a weight matrix)")
    out = dims[0] if attrs.get("transB", 0) else dims[1]
    return {"kind": "linear", "out_features": out, "bias": len(node.input) > 2}


def _layer(g: _Graph, node: Any, acts: list[str], out_shape: tuple[int, ...]) -> dict[str, Any]:
    """Our layer definition (kind and arguments) for one ONNX node."""
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
        return _pool("maxpool2d" if op == "MaxPool" else "avgpool2d", attrs)
    if op == "Gather" and node.input[0] in g.weights and acts == [node.input[1]]:
        rows, dim = g.weights[node.input[0]]
        return {"kind": "embedding", "num_embeddings": rows, "embedding_dim": dim}
    simple = {"Relu": "relu", "Tanh": "tanh", "BatchNormalization": "batchnorm2d",
              "Softmax": "softmax", "LayerNormalization": "layernorm", "Gelu": "gelu",
              "Dropout": "dropout"}
    if op in simple:
        return {"kind": simple[op]}
    if op == "GlobalAveragePool":
        return {"kind": "adaptive_avgpool2d", "output_size": 1}
    if op == "Flatten" and len(out_shape) == 1:
        return {"kind": "flatten"}
    if op in VIEWS:
        return {"kind": "reshape", "shape": list(out_shape)}
    if op in UNARY or op in ("Add", "Clip"):
        return {"kind": "elementwise", "shape": list(out_shape), "op": op.lower()}
    raise _Unsupported(op)


def _clip_is_relu6(g: _Graph, node: Any) -> bool:
    attrs = g.attrs(node)
    return (attrs.get("min", 0.0), attrs.get("max", 6.0)) == (0.0, 6.0) and len(node.input) == 1


class _Layers:
    """ONNX nodes -> our layer definitions, in graph (topological) order."""

    def __init__(self, g: _Graph, graph: Any, as_elementwise: bool):
        self.g, self.as_elementwise = g, as_elementwise
        self.producer = {i.name: MODEL_INPUT for i in graph.input if i.name not in g.weights}
        self.layers: list[dict[str, Any]] = []
        self.expected: dict[str, tuple[int, ...]] = {}
        self.unsupported: Counter[str] = Counter()
        self.approximated: Counter[str] = Counter()
        self.taken: set[str] = set()
        self.linear_of: dict[str, dict[str, Any]] = {}  # a MatMul's output -> its layer

    def add_node(self, index: int, node: Any) -> None:
        g = self.g
        if all(o in g.static for o in node.output):
            return
        acts = [i for i in node.input if i and i not in g.static]
        if node.op_type == "Identity":
            self.producer[node.output[0]] = self.producer[acts[0]]
            return
        if self._fold_bias(node, acts):
            return
        out = node.output[0]
        try:
            if node.op_type not in ONNX_KINDS:
                raise _Unsupported(node.op_type)
            definition = _layer(g, node, acts, g.per_sample(out))
        except _Unsupported as err:
            found = self._approximate(str(err), node, acts)
            if found is None:
                return
            definition = found
        name = _name(node, index, self.taken)
        inputs = [self.producer[a] for a in acts if a in self.producer]
        self.layers.append({"name": name, "inputs": inputs, **definition})
        shape = definition.get("shape")
        self.expected[name] = tuple(shape) if shape else g.per_sample(out)
        for o in node.output:
            self.producer[o] = name
        if definition["kind"] == "linear" and node.op_type == "MatMul":
            self.linear_of[out] = self.layers[-1]

    def _approximate(self, label: str, node: Any, acts: list[str]) -> dict[str, Any] | None:
        """An operator without a formula: counted for the error, or (where the user asked)
        a memory-bound elementwise kernel the size of its output (else of its input)."""
        if not self.as_elementwise:
            self.unsupported[label] += 1
            return None
        self.approximated[label] += 1
        out = node.output[0]
        shape = self.g.per_sample(out if out in self.g.shapes or not acts else acts[0])
        return {"kind": "elementwise", "shape": list(shape), "op": node.op_type.lower()}

    def _fold_bias(self, node: Any, acts: list[str]) -> bool:
        """A MatMul by a weight, then the Add of a bias vector: one linear layer."""
        if node.op_type != "Add" or len(acts) != 1 or acts[0] not in self.linear_of:
            return False
        bias = [i for i in node.input if i != acts[0]]
        layer = self.linear_of[acts[0]]
        if (len(bias) != 1 or self.g.weights.get(bias[0]) != (layer["out_features"],)
                or self.g.consumers[acts[0]] != 1):
            return False
        layer["bias"] = True
        self.producer[node.output[0]] = layer["name"]
        self.expected[layer["name"]] = self.g.per_sample(node.output[0])
        return True


def _counted(counts: Counter[str]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(counts.items()))


def load_onnx(path: str, options: ImportOptions) -> ModelDef:
    onnx, model = _read(path)
    if not _bind(model, path, options.seq_len) and options.seq_len is not None:
        raise UserError(f"seq_len: {path} has no symbolic sequence dimension to bind; "
                        "leave seq_len out")
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as err:
        raise UserError(f"{path}: onnx shape inference failed: "
                        f"{str(err).strip().splitlines()[0]}") from None
    g = _Graph(onnx, model, path)
    layers = _Layers(g, model.graph, options.unsupported_as_elementwise)
    for index, node in enumerate(model.graph.node):
        layers.add_node(index, node)
    if layers.unsupported:
        raise UserError(f"{path}: unsupported ONNX operators: {_counted(layers.unsupported)} "
                        "(--unsupported-as-elementwise costs them as memory-bound elementwise "
                        "kernels)")
    if layers.approximated:
        warnings.warn(f"{path}: costed as memory-bound elementwise kernels: "
                      f"{_counted(layers.approximated)}", ModelWarning, stacklevel=2)
    return _checked(path, g, model, layers)


def _checked(path: str, g: _Graph, model: Any, layers: _Layers) -> ModelDef:
    if not layers.layers:
        raise UserError(f"{path}: the graph has no operator to cost")
    first_input = [i for i in model.graph.input if i.name not in g.weights][0]
    elem = first_input.type.tensor_type.elem_type
    size = {1: 4, 6: 4, 7: 8, 10: 2, 11: 8, 16: 2}.get(elem, 4)
    data = {"name": Path(path).stem[:120] or "onnx", "description": f"imported from {path}",
            "input_shape": list(g.per_sample(first_input.name)),
            "input_bytes_per_element": size, "layers": layers.layers}
    resolved = resolve_layers(parse_model(data, path), 1)
    for layer in resolved:
        if math.prod(layer.cost.out_shape) and layer.cost.out_shape != layers.expected[layer.name]:
            raise UserError(f"{path}: node {layer.name} ({layer.kind}) gives shape "
                            f"{list(layer.cost.out_shape)}, onnx infers "
                            f"{list(layers.expected[layer.name])}")
    return parse_model(data, path)


ONNX = Importer("onnx", lambda ref: ref.endswith(".onnx"), load_onnx, "onnx")
