"""Shape inference for the ONNX importer, with the exporter's arithmetic on shapes folded.

torch.onnx.export writes the sizes of views and broadcasts as small computations on shapes
and constants (Shape, Gather, Equal, Where, ConstantOfShape feeding a Reshape or an
Expand: ViT's class token). onnx's shape inference propagates some of them, not all, and
then leaves what follows unsized. Here every node whose inputs are known small constants
(Constant nodes and integer initializers, not weights; or a Shape of a tensor already
sized) is evaluated with onnx's reference evaluator and replaced by a Constant holding its
value, and shape inference runs again, until nothing more folds. Such nodes cost nothing
in the simulation either way.
"""

from __future__ import annotations

import math
from typing import Any

from simulator.core.errors import UserError

MAX_FOLDED_ELEMENTS = 2**16  # shape arithmetic is small
INTEGER_TYPES = (2, 3, 4, 5, 6, 7, 9, 12, 13)  # TensorProto's integer and bool types
MAX_ROUNDS = 16


def inferred(onnx: Any, model: Any, where: str) -> Any:
    """The model after onnx's shape inference (strict, with data propagation)."""
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as err:
        raise UserError(f"{where}: onnx shape inference failed: "
                        f"{str(err).strip().splitlines()[0]}") from None
    for _ in range(MAX_ROUNDS):
        if not _fold(onnx, model):
            break
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    return model


def known_shapes(graph: Any) -> dict[str, tuple[int, ...]]:
    """The full shape of every tensor whose dimensions are all sizes."""
    shapes = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        if info.type.tensor_type.HasField("shape") and all(d.HasField("dim_value")
                                                            for d in dims):
            shapes[info.name] = tuple(d.dim_value for d in dims)
    return shapes


def _fold(onnx: Any, model: Any) -> bool:
    """Replace the nodes that can be evaluated now by Constants; whether any was."""
    graph, to_array = model.graph, onnx.numpy_helper.to_array
    # integer initializers are shapes and indices; float ones are weights, never folded
    values = {t.name: to_array(t) for t in graph.initializer
              if t.data_type in INTEGER_TYPES and math.prod(t.dims) <= MAX_FOLDED_ELEMENTS}
    shapes = known_shapes(graph)
    nodes, changed = [], False
    for node in graph.node:
        found = _evaluate(onnx, node, values, shapes)
        if found is None or node.op_type == "Constant":
            nodes.append(node)
            values.update(zip(node.output, found or [], strict=False))
            continue
        changed = True
        for name, value in zip(node.output, found, strict=True):
            values[name] = value
            nodes.append(onnx.helper.make_node(
                "Constant", [], [name], name=f"{node.name or name}_folded",
                value=onnx.numpy_helper.from_array(value, name)))
    if changed:
        del graph.node[:]
        graph.node.extend(nodes)
    return changed


def _evaluate(onnx: Any, node: Any, values: dict[str, Any],
              shapes: dict[str, tuple[int, ...]]) -> list[Any] | None:
    """The values of a node's outputs where its inputs are known and small, else None."""
    import numpy as np

    if node.domain not in ("", "ai.onnx") or any(a.type in (5, 10) for a in node.attribute):
        return None  # custom domains, subgraphs (If, Loop)
    if node.op_type == "Shape" and node.input[0] in shapes:
        attrs = {a.name: a.i for a in node.attribute}
        shape = shapes[node.input[0]]
        return [np.array(shape[attrs.get("start", 0):attrs.get("end", len(shape))],
                         dtype=np.int64)]
    if any(i and i not in values for i in node.input) or not node.output:
        return None
    try:
        found = onnx.reference.ReferenceEvaluator(node).run(
            None, {i: values[i] for i in node.input if i})
    except Exception:  # an operator the reference evaluator lacks: leave it to inference
        return None
    arrays = [np.asarray(v) for v in found]
    if len(arrays) != len(node.output) or any(a.size > MAX_FOLDED_ELEMENTS for a in arrays):
        return None
    return arrays
