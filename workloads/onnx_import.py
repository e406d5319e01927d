"""ONNX import: `--model FILE.onnx` -> a ModelDef of our layer kinds (the `onnx` package,
`pip install 'simulator[onnx]'`).

The file is checked (onnx.checker), its input's symbolic dimensions are bound — the first
(the batch: the builder scales per-sample shapes by the workload's batch) to 1, every other
one to the workload's seq_len, which must then be given — and onnx's shape inference sizes
every tensor (`workloads.onnx_static` folds the exporter's arithmetic on shapes first).
Shapes are per sample: where the batch is symbolic, the graph is sized for two samples too
and each tensor's batch axis is the one that doubles (PyTorch's exported attention moves
it); else it is the first. Each node becomes a layer
of ours (`workloads.onnx_nodes`; a MatMul by a weight followed by the Add of a bias is one linear
layer); nodes that compute only on constants and shapes (Shape, Constant, the index
arithmetic of a Reshape) cost nothing. Operators without a formula are one error listing
them by name and count, or, with `unsupported_as_elementwise`, memory-bound elementwise
kernels with a warning naming them. Every layer's output shape is checked against onnx's.
"""

from __future__ import annotations

import importlib
import math
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from workloads.importers import Importer, ImportOptions, ModelWarning, require
from workloads.model_def import MODEL_INPUT, RESERVED_LAYER_NAMES, ModelDef, parse_model
from workloads.onnx_attention import attention_layer, attention_matches
from workloads.onnx_nodes import ONNX_KINDS, Graph, Unsupported, attention_shapes, layer_definition
from workloads.onnx_static import inferred
from workloads.resolve import resolve_layers

MAX_ONNX_BYTES = 4 * 2**30  # a protobuf file is at most 2 GiB; weights may be external


def _read(path: str) -> Any:
    onnx = require("onnx", path, "onnx")
    importlib.import_module("onnx.reference")  # for workloads.onnx_static
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


def _bind(model: Any, where: str, seq_len: int | None, batch: int) -> tuple[bool, bool]:
    """Concrete sizes for the input's symbolic dimensions (and the same symbols elsewhere):
    `batch` for the first; whether a sequence dimension took seq_len, whether the batch
    was symbolic."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise UserError(f"{where}: one input is supported, the model has "
                        f"{len(inputs)} ({', '.join(i.name for i in inputs)})")
    symbols: dict[str, int] = {}
    sequence = symbolic_batch = False
    for j, dim in enumerate(inputs[0].type.tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            continue
        sequence, symbolic_batch = sequence or j > 0, symbolic_batch or j == 0
        if j > 0 and seq_len is None:
            raise UserError(f"{where}: dimension {j} of input '{inputs[0].name}' is symbolic "
                            f"('{dim.dim_param}'): give --seq-len (workload.seq_len) for it")
        symbols[dim.dim_param] = int(seq_len or 0) if j else batch
        dim.dim_value = symbols[dim.dim_param]
    for info in [*model.graph.output, *model.graph.value_info]:
        for dim in info.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in symbols:
                dim.dim_value = symbols[dim.dim_param]
            elif dim.HasField("dim_param"):
                dim.Clear()  # left to shape inference
    return sequence, symbolic_batch


def _name(node: Any, index: int, taken: set[str]) -> str:
    name = re.sub(r"[\x00-\x1f\x7f]", "_", node.name or f"{node.op_type}_{index}")[:120]
    if name in taken or name in RESERVED_LAYER_NAMES:
        name = f"{name[:100]}_{index}"
    taken.add(name)
    return name


class _Layers:
    """ONNX nodes -> our layer definitions, in graph (topological) order."""

    def __init__(self, g: Graph, graph: Any, as_elementwise: bool):
        self.g, self.as_elementwise = g, as_elementwise
        self.producer = {i.name: MODEL_INPUT for i in graph.input if i.name not in g.weights}
        self.layers: list[dict[str, Any]] = []
        self.expected: dict[str, tuple[int, ...]] = {}
        self.unsupported: Counter[str] = Counter()
        self.approximated: Counter[str] = Counter()
        self.taken: set[str] = set()
        self.linear_of: dict[str, dict[str, Any]] = {}  # a MatMul's output -> its layer
        self.claimed: set[str] = set()  # learned tensors a layer has taken
        self.attention = {out: m for out, m in attention_matches(graph, g.static,
                                                                  g.consumers).items()
                          if attention_shapes(g, m) is not None}
        self.absorbed = set().union(*(m.absorbed for m in self.attention.values()))

    def add_node(self, index: int, node: Any) -> None:
        g = self.g
        if all(o in g.static for o in node.output):
            return
        acts = [i for i in node.input if i and i not in g.static]
        if node.op_type == "Identity":
            self.producer[node.output[0]] = self.producer[acts[0]]
            return
        if self._fold_bias(node, acts) or node.output[0] in self.absorbed:
            return
        out = node.output[0]
        matched = self.attention.get(out)
        if matched is not None:
            acts = [matched.q, matched.k, matched.v]
        try:
            if matched is not None:
                shape = attention_shapes(g, matched)
                assert shape is not None
                definition = attention_layer(shape, matched.masked, flash=False)
            elif node.op_type not in ONNX_KINDS:
                raise Unsupported(node.op_type)
            else:
                definition = layer_definition(g, node, acts, out)
        except Unsupported as err:
            found = self._approximate(str(err), node, acts)
            if found is None:
                return
            definition = found
        self._claim(node, definition)
        name = _name(node, index, self.taken)
        inputs = [self.producer[a] for a in acts if a in self.producer]
        self.layers.append({"name": name, "inputs": inputs, **definition})
        shape = definition.get("shape")
        self.expected[name] = tuple(shape) if shape else g.per_sample(out)
        for o in node.output:
            self.producer[o] = name
        if definition["kind"] == "linear" and node.op_type == "MatMul":
            self.linear_of[out] = self.layers[-1]

    def _claim(self, node: Any, definition: dict[str, Any]) -> None:
        """The learned tensors a layer reads are its own (a weight, a scale); an elementwise
        layer's (a position embedding added, a class token concatenated) are its `params`."""
        learned = set().union(*(self.g.learned.get(i, set()) for i in node.input)) - self.claimed
        self.claimed |= learned
        if learned and definition["kind"] == "elementwise":
            definition["params"] = sum(self.g.sizes[t] for t in sorted(learned))

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
    doubled = onnx.ModelProto()
    doubled.CopyFrom(model)
    sequence, symbolic_batch = _bind(model, path, options.seq_len, 1)
    if not sequence and options.seq_len is not None:
        raise UserError(f"seq_len: {path} has no symbolic sequence dimension to bind; "
                        "leave seq_len out")
    model = inferred(onnx, model, path)
    if symbolic_batch:  # shapes for two samples too: the axis that doubles is the batch
        _bind(doubled, path, options.seq_len, 2)
    g = Graph(onnx, model, path, inferred(onnx, doubled, path) if symbolic_batch else None)
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


def _checked(path: str, g: Graph, model: Any, layers: _Layers) -> ModelDef:
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
