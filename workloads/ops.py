"""Op (one unit of work a device executes) and OpGraph (ops in program order and their
dependencies).

An op states how much work it has (flops, bytes read and written) and how parallel that
work is (`work_items`); for matrix products it also carries the GEMM shape so that a GPU
model can quantise it into tiles and waves. Ops are frozen: costing never mutates them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, overload

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
        for name, value in reversed(self.attrs):  # the last entry of a key wins
            if name == key:
                return value
        return default


@dataclass
class OpGraph:
    """Ops in program (launch) order plus their data dependencies: each op's predecessors
    (each once, in the order `add` was given them) and successors (in program order).
    Plain dictionaries, not a networkx graph: a sweep builds one per point and a graph
    library's bookkeeping cost more than the rest of the build (`to_networkx` for analysis)."""

    name: str
    batch: int
    mode: str
    precision: str
    order: list[str] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)
    params: int = 0
    layer_kinds: dict[str, str] = field(default_factory=dict)  # layer name -> its kind
    _ops: dict[str, Op] = field(default_factory=dict, repr=False)
    _preds: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _succs: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def memo(self, name: str, compute: Callable[[OpGraph], Any]) -> Any:
        """`compute(self)`, worked out once while the graph stays as it is (`add` and `mark`
        forget it): what every plan of one graph derives from it alike, on any device."""
        if name not in self._memo:
            self._memo[name] = compute(self)
        return self._memo[name]

    def add(self, op: Op, after: list[str] | tuple[str, ...] = ()) -> Op:
        """Append `op` in program order, depending on the ops named in `after` (earlier ops)."""
        if self._memo:
            self._memo.clear()
        if op.name in self._ops:
            raise ValueError(f"duplicate op name {op.name!r}")
        preds = tuple(dict.fromkeys(after))
        for pred in preds:
            if pred not in self._ops:
                raise ValueError(f"op {op.name!r} depends on {pred!r}, which is not an earlier op")
        self._ops[op.name], self._preds[op.name], self._succs[op.name] = op, preds, []
        self.order.append(op.name)
        for pred in preds:
            self._succs[pred].append(op.name)
        return op

    def op(self, name: str) -> Op:
        return self._ops[name]

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    def mark(self, name: str, key: str, value: float | str | bool) -> None:
        """Add the attribute `key` to the op `name` (ops are frozen: the graph gets a copy)."""
        op = self._ops[name]
        self._ops[name] = replace(op, attrs=op.attrs + ((key, value),))
        self._memo.clear()

    def ops(self) -> Iterator[Op]:
        for name in self.order:
            yield self._ops[name]

    def predecessors(self, name: str) -> list[str]:
        return list(self._preds[name])

    def predecessor_tuples(self) -> Mapping[str, tuple[str, ...]]:
        """Every op's predecessors, read-only (tuples: nothing to copy)."""
        return MappingProxyType(self._preds)

    def successors(self, name: str) -> list[str]:
        return list(self._succs[name])

    def edges(self) -> Iterator[tuple[str, str]]:
        """Every dependency (from, to), in program order of `to`."""
        for name in self.order:
            for pred in self._preds[name]:
                yield pred, name

    def to_networkx(self) -> Any:
        """The dependencies as a networkx DiGraph (nodes carry `op`), for analysis and tests."""
        import networkx as nx

        graph = nx.DiGraph()
        for op in self.ops():
            graph.add_node(op.name, op=op)
        graph.add_edges_from(self.edges())
        return graph

    def __len__(self) -> int:
        return len(self.order)

    @property
    def flops(self) -> float:
        flops: float = self.memo("flops", lambda graph: sum(op.flops for op in graph.ops()))
        return flops

    @property
    def bytes(self) -> float:
        total: float = self.memo("bytes", lambda graph: sum(op.bytes for op in graph.ops()))
        return total
