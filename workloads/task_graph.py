"""Workloads that are not networks: a task graph, as YAML or Python, and its OpGraph.

A task graph is a list of tasks, each with its work (`flops`, `bytes_read`, `bytes_written`,
`dtype`), how parallel it is (`parallelism`: independent work items; `kernels`: kernels
it launches, of which `calls` go through the framework's dispatch and the rest are a
library call's own, launched from native code), optionally the shape of its matrix product
(`gemm: {m, n, k}`), and the tasks it waits for (`after`). A file has `kind: task_graph`,
`name` and `tasks`:

    kind: task_graph
    name: two-products
    tasks:
      - {name: a, kind: gemm, gemm: {m: 4096, n: 4096, k: 4096}, dtype: fp64}
      - {name: b, kind: elementwise, flops: 1.6e+7, bytes_read: 1.3e+8,
         bytes_written: 1.3e+8, after: [a]}

A `gemm` task without `flops` or bytes gets them from its shape (2 m n k; A, B and C read,
C written). Tasks run in the order of the file where their dependencies allow (a stable
topological order), so `after` may name a later task. The checks the schema cannot make are
`TaskGraph.problem()`: unique names, calls <= kernels, known dependencies, no cycle; every
number is bounded.
Generators (`workloads.generators`: tiled GEMM, blocked LU) build graphs of this type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from simulator.core.errors import PathPart, UserError, format_path, shown
from simulator.core.yaml_source import YamlSource
from workloads.model_def import MAX_SIZE, LayerName
from workloads.ops import DTYPE_BYTES, Gemm, Op, OpGraph

TASK_GRAPH: Literal["task_graph"] = "task_graph"  # the `kind:` of a task-graph file
MAX_TASKS = 100_000
MAX_FLOPS = 1e21  # per task (a 10^7-sided matrix product is 2e21)
MAX_BYTES = 1e15  # per task, and the graph's data
MAX_ITEMS = 2**53

Dtype = Literal["fp64", "fp32", "tf32", "bf16", "fp16"]
TaskKind = Literal["gemm", "elementwise", "reduction"]
Flops = Annotated[float, Field(ge=0, le=MAX_FLOPS, allow_inf_nan=False)]
Bytes = Annotated[float, Field(ge=0, le=MAX_BYTES, allow_inf_nan=False)]
Size = Annotated[int, Field(strict=True, ge=1, le=MAX_SIZE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class GemmShape(_Strict):
    """`batch` independent (m x k) @ (k x n) products."""

    m: Size
    n: Size
    k: Size
    batch: Size = 1

    def gemm(self) -> Gemm:
        return Gemm(self.m, self.n, self.k, self.batch)


class TaskDef(_Strict):
    """One task: its work, its parallelism and what it waits for."""

    name: LayerName
    kind: TaskKind = "elementwise"
    group: LayerName | None = Field(None, description="what per-layer breakdowns sum it under "
                                    "(default: its kind)")
    flops: Flops | None = Field(None, description="default: 2 m n k for a gemm, else 0")
    bytes_read: Bytes | None = Field(None, description="default: A, B, C of a gemm, else 0")
    bytes_written: Bytes | None = Field(None, description="default: C of a gemm, else 0")
    dtype: Dtype = "fp32"
    parallelism: Annotated[int, Field(strict=True, ge=1, le=MAX_ITEMS)] | None = Field(
        None, description="independent work items (default: outputs written)")
    kernels: Annotated[int, Field(strict=True, ge=1, le=MAX_SIZE)] = Field(
        1, description="kernels (or library calls) the task issues (each pays a fixed cost)")
    calls: Annotated[int, Field(strict=True, ge=0, le=MAX_SIZE)] | None = Field(
        None, description="how many of its kernels the program issues through the framework, "
        "each paying its dispatch (default: all); the others are launched from native code "
        "by a library call made by an earlier task (0: the task is inside that call)")
    gemm: GemmShape | None = None
    after: list[LayerName] = Field(default_factory=list, max_length=MAX_TASKS)

    def op(self) -> Op:
        """The task as the op a device model costs (phase `task`, layer its group; its
        data is updated where it lies, `in_place`, not allocated fresh)."""
        e = DTYPE_BYTES[self.dtype]
        g = self.gemm.gemm() if self.gemm is not None else None
        flops = self.flops if self.flops is not None else (g.flops if g else 0.0)
        read = self.bytes_read if self.bytes_read is not None else (
            e * g.batch * (g.m * g.k + g.k * g.n + g.m * g.n) if g else 0.0)
        written = self.bytes_written if self.bytes_written is not None else (
            e * g.batch * g.m * g.n if g else 0.0)
        items = self.parallelism or max(1, int(written // e))
        return Op(self.name, self.kind, "task", self.group or self.kind, float(flops), float(read),  # type: ignore[arg-type]
                  float(written), self.dtype, items, gemm=g, kernels=self.kernels,
                  attrs=(("kernel", self.group or self.kind), ("in_place", True)),
                  calls=self.calls)


class TaskGraph(_Strict):
    """A workload of tasks and dependencies (`kind: task_graph`)."""

    kind: Literal["task_graph"] = TASK_GRAPH
    name: LayerName
    description: str = ""
    sources: list[str] = []
    memory_bytes: Bytes | None = Field(None, description="data the graph keeps on the device "
                                       "(default: the largest task's bytes)")
    tasks: list[TaskDef] = Field(min_length=1, max_length=MAX_TASKS)
    _source: YamlSource | None = PrivateAttr(None)

    def problem(self) -> tuple[tuple[PathPart, ...], str] | None:
        """The first problem the schema cannot see: a duplicate name, more framework calls
        than kernels, an unknown dependency, a task that waits for itself or a cycle."""
        index: dict[str, int] = {}
        for i, task in enumerate(self.tasks):
            if task.name in index:
                return ("tasks", i, "name"), f"duplicate task name '{task.name}'"
            index[task.name] = i
        for i, task in enumerate(self.tasks):
            if task.calls is not None and task.calls > task.kernels:
                return ("tasks", i, "calls"), (f"at most kernels ({task.kernels}), got "
                                               f"{task.calls}")
            for j, dep in enumerate(task.after):
                if dep not in index:
                    return ("tasks", i, "after", j), f"unknown task {shown(dep)}"
        try:
            cycle = nx.find_cycle(self.dependencies())
        except nx.NetworkXNoCycle:
            return None
        names = [a for a, _ in cycle] + [cycle[0][0]]
        where = index[cycle[0][1]]
        return ("tasks", where, "after"), f"dependencies form a cycle: {' -> '.join(names)}"

    def dependencies(self) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(t.name for t in self.tasks)
        graph.add_edges_from((dep, t.name) for t in self.tasks for dep in t.after)
        return graph

    def check(self, where: str) -> TaskGraph:
        found = self.problem()
        if found is None:
            return self
        if self._source is not None:
            raise self._source.error(*found)
        raise UserError(f"{where}: {format_path(found[0])}: {found[1]}")

    @property
    def flops(self) -> float:
        return sum(t.op().flops for t in self.tasks)


def order(graph: TaskGraph) -> list[TaskDef]:
    """The tasks in the order a runtime issues them: the file's order where the
    dependencies allow (a stable topological sort)."""
    position = {t.name: i for i, t in enumerate(graph.tasks)}
    by_name = {t.name: t for t in graph.tasks}
    names = nx.lexicographical_topological_sort(graph.dependencies(), key=position.__getitem__)
    return [by_name[n] for n in names]


def build_task_graph(graph: TaskGraph) -> OpGraph:
    """The OpGraph of one run of the task graph (its tasks are its ops; no input copy, no
    loss, no optimizer). Memory: the graph's data, held for the whole run."""
    ops = OpGraph(graph.name, 1, "run", "task")
    for task in order(graph):
        ops.add(task.op(), task.after)
    largest = max(op.bytes for op in ops.ops())
    data = graph.memory_bytes if graph.memory_bytes is not None else largest
    ops.memory = {"data_bytes": data, "peak_bytes": data}
    return ops


def critical_path_s(ops: OpGraph, duration_s: Callable[[Op], float]) -> float:
    """The longest chain of dependent ops, each taking `duration_s(op)`: no schedule on any
    number of devices finishes sooner."""
    finish: dict[str, float] = {}
    for op in ops.ops():  # program order is a topological order
        start = max((finish[p] for p in ops.predecessors(op.name)), default=0.0)
        finish[op.name] = start + duration_s(op)
    return max(finish.values(), default=0.0)


def _describe(error: Any) -> str:
    kind, got = error["type"], shown(error.get("input"))
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    return f"{error['msg'].replace('Input should be', 'must be')}, got {got}"


def _data_path(data: Any, loc: Sequence[str | int]) -> tuple[PathPart, ...]:
    path: list[PathPart] = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            path.append(part)
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            path.append(part)
            data = data[part]
        elif isinstance(data, dict):
            path.append(part)
            break
    return tuple(path)


def parse_task_graph(data: Any, where: str, source: YamlSource | None = None) -> TaskGraph:
    """Validate a task graph given as a mapping; the first problem is one UserError line
    (`FILE:LINE: tasks[3].after[0]: unknown task 'x'` for a file)."""
    try:
        graph = TaskGraph.model_validate(data)
    except ValidationError as err:
        errors = err.errors()
        first = ([e for e in errors if e["type"] == "extra_forbidden"] or errors)[0]
        path = _data_path(data, first["loc"])
        if source is not None:
            raise source.error(path, _describe(first)) from None
        raise UserError(f"{where}: {format_path(path)}: {_describe(first)}") from None
    graph._source = source
    return graph.check(where)
