"""Op (one unit of work a device executes) and OpGraph (a networkx DiGraph of ops).

An op states how much work it has (flops, bytes read and written) and how parallel that
work is (`work_items`); for matrix products it also carries the GEMM shape so that a GPU
model can quantise it into tiles and waves. Ops are frozen: costing never mutates them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal, overload

import networkx as nx

OpKind = Literal["gemm", "elementwise", "reduction", "pool", "optimizer", "copy", "collective"]
Phase = Literal["input", "fwd", "loss", "bwd_data", "bwd_weight", "update", "comm", "task"]
AttrValue = float | str | bool  # the value of one entry of Op.attrs

DTYPE_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2}


@dataclass(frozen=True)
class Gemm:
    """Shape of a (batched) matrix product: `batch` independent (m x k) @ (k x n) products."""

    m: int
    n: int
    k: int
    batch: int = 1

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.n * self.k * self.batch


@dataclass(frozen=True)
class Op:
    """One kernel-level unit of work (or a few kernels issued together). `calls`: how many
    of its `kernels` the program issues through the framework (None: each of them); the
    rest are launched by a library call from native code (cuSOLVER's or LAPACK's own
    kernels inside one `lu_factor`), which costs the host no framework dispatch."""

    name: str
    kind: OpKind
    phase: Phase
    layer: str
    flops: float
    bytes_read: float
    bytes_written: float
    dtype: str
    work_items: int
    param_bytes: float = 0.0
    gemm: Gemm | None = None
    kernels: int = 1
    attrs: tuple[tuple[str, AttrValue], ...] = field(default=())
    calls: int | None = None

    @property
    def framework_calls(self) -> int:
        """Kernels issued through the framework, each paying its dispatch."""
        return self.kernels if self.calls is None else min(self.calls, self.kernels)

    @property
    def library_kernels(self) -> int:
        """Kernels a library call launches itself (the driver's launch, no dispatch)."""
        return self.kernels - self.framework_calls

    @property
    def bytes(self) -> float:
        return self.bytes_read + self.bytes_written

    @overload
    def attr(self, key: str, default: None = None) -> AttrValue | None: ...
    @overload
    def attr(self, key: str, default: AttrValue) -> AttrValue: ...

    def attr(self, key: str, default: AttrValue | None = None) -> AttrValue | None:
        return dict(self.attrs).get(key, default)


@dataclass
class OpGraph:
    """Ops in program (launch) order plus their data dependencies as a DiGraph."""

    name: str
    batch: int
    mode: str
    precision: str
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    order: list[str] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)
    params: int = 0
    layer_kinds: dict[str, str] = field(default_factory=dict)  # layer name -> its kind

    def add(self, op: Op, after: list[str] | tuple[str, ...] = ()) -> Op:
        """Append `op` in program order, depending on the ops named in `after`."""
        if op.name in self.graph:
            raise ValueError(f"duplicate op name {op.name!r}")
        self.graph.add_node(op.name, op=op)
        self.order.append(op.name)
        for pred in after:
            self.graph.add_edge(pred, op.name)
        return op

    def op(self, name: str) -> Op:
        return self.graph.nodes[name]["op"]

    def mark(self, name: str, key: str, value: float | str | bool) -> None:
        """Add the attribute `key` to the op `name` (ops are frozen: the node gets a copy)."""
        op = self.op(name)
        self.graph.nodes[name]["op"] = replace(op, attrs=op.attrs + ((key, value),))

    def ops(self) -> Iterator[Op]:
        for name in self.order:
            yield self.op(name)

    def predecessors(self, name: str) -> list[str]:
        return list(self.graph.predecessors(name))

    def __len__(self) -> int:
        return len(self.order)

    @property
    def flops(self) -> float:
        return sum(op.flops for op in self.ops())

    @property
    def bytes(self) -> float:
        return sum(op.bytes for op in self.ops())
