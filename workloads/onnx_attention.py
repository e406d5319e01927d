"""Attention in an ONNX graph, for `workloads.onnx_import`: the pattern that
torch.onnx.export writes for F.scaled_dot_product_attention and nn.MultiheadAttention —
MatMul(Q x s, Transpose(K) x s) [+ a constant mask] -> Softmax -> MatMul(., V), the scale a
Mul or Div by a constant on either side — found before the nodes are mapped, so that it
becomes one `attention` layer (unfused: the graph runs its kernels one by one) instead of
two products, a softmax and the scaling kernels; and opset 23's Attention operator, the
fused call (`flash`).

Each node of a match but the last is absorbed (no layer of its own): its output is read by
no node outside the match. Q, K and V are the tensors before the scaling and the transpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCALES = ("Mul", "Div")


@dataclass
class Match:
    """One attention: the tensors it reads, whether a mask is added, what it absorbs."""

    q: str
    k: str
    v: str
    masked: bool = False
    absorbed: set[str] = field(default_factory=set)  # the first output of each node


class _Finder:
    def __init__(self, graph: Any, static: set[str], consumers: dict[str, int]):
        self.static, self.consumers = static, consumers
        self.producer = {o: n for n in graph.node for o in n.output}

    def _only(self, tensor: str) -> Any | None:
        """The node that makes a tensor read by one node only, else None."""
        node = self.producer.get(tensor)
        return node if node is not None and self.consumers.get(tensor, 0) == 1 else None

    def _unscaled(self, tensor: str, ops: tuple[str, ...], absorbed: list[Any]) -> str:
        """The tensor before a chain of operations by constants (`ops`)."""
        node = self._only(tensor)
        while node is not None and node.op_type in ops:
            acts = [i for i in node.input if i and i not in self.static]
            if len(acts) != 1 or (node.op_type == "Div" and node.input[0] != acts[0]):
                break
            absorbed.append(node)
            tensor = acts[0]
            node = self._only(tensor)
        return tensor

    def match(self, softmax: Any, users: dict[str, list[Any]]) -> tuple[Any, Match] | None:
        absorbed: list[Any] = [softmax]
        scores = self._unscaled(softmax.input[0], (*SCALES, "Add"), absorbed)
        masked = any(n.op_type == "Add" for n in absorbed)
        product, after = self._only(scores), users.get(softmax.output[0], [])
        if product is None or product.op_type != "MatMul" or len(after) != 1:
            return None
        out = after[0]
        if out.op_type != "MatMul" or out.input[0] != softmax.output[0] or (
                out.input[1] in self.static):
            return None
        absorbed.append(product)
        q = self._unscaled(product.input[0], SCALES, absorbed)
        k_t = self._unscaled(product.input[1], SCALES, absorbed)
        transpose = self._only(k_t)
        if transpose is None or transpose.op_type != "Transpose" or q in self.static:
            return None
        perm = [a.ints for a in transpose.attribute if a.name == "perm"]
        rank = len(perm[0]) if perm else 0
        if not perm or list(perm[0]) != [*range(rank - 2), rank - 1, rank - 2]:
            return None
        absorbed.append(transpose)
        outputs = {n.output[0] for n in absorbed}
        return out, Match(q, transpose.input[0], out.input[1], masked, outputs)


def attention_matches(graph: Any, static: set[str],
                      consumers: dict[str, int]) -> dict[str, Match]:
    """The attention patterns of a graph, by the output of the MatMul that ends each."""
    finder = _Finder(graph, static, consumers)
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for i in node.input:
            users.setdefault(i, []).append(node)
    found = {}
    for node in graph.node:
        axis = [a.i for a in node.attribute if a.name == "axis"]
        if node.op_type == "Softmax" and axis in ([], [-1]):
            matched = finder.match(node, users)
            if matched is not None:
                found[matched[0].output[0]] = matched[1]
    return found


def attention_layer(heads_of: tuple[int, ...], masked: bool, flash: bool) -> dict[str, Any]:
    """Our attention layer for per-sample inputs of (heads, seq, head_dim) or (seq, d)."""
    heads = heads_of[0] if len(heads_of) == 3 else 1
    return {"kind": "attention", "heads": heads, "causal": masked,
            "implementation": "flash" if flash else "unfused"}
