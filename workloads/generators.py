"""Task graphs of dense linear algebra, generated from a size: tiled GEMM and blocked LU.

`tiled_gemm(n, tile)`: C = A B of n x n matrices cut into tiles; the task (i, j, l) adds
A[i, l] B[l, j] to C[i, j] after (i, j, l - 1), so the tiles of C are independent chains.
`blocked_lu(n, block)`: LU factorisation, right-looking, one of two task layouts:
- `panels` (default; LAPACK's dgetrf, hence scipy's lu_factor and cuSOLVER's getrf): per
  block column k, GETRF of the (n - kb) x b panel with partial pivoting, the row swaps on the
  rest of the matrix (LASWP), TRSM of the b x w block row and one GEMM of the trailing
  (n - kb - b)^2 matrix: a chain of 5 n / b - 2 tasks whose GEMMs shrink as k grows.
- `tiles` (PLASMA's tile algorithm, the DAG a task runtime schedules): GETRF of the
  diagonal tile, TRSMs of the tiles right of it and below it, and a GEMM per trailing tile;
  no pivoting between tiles. 2 n/b + (n/b)(n/b - 1) + (n/b - 1)(n/b)(2n/b - 1)/6 tasks.
Both do the arithmetic of unblocked Gaussian elimination: 2/3 n^3 - 1/2 n^2 - 1/6 n FLOPs
(multiplies, adds and divisions; pivot searches not counted). The last block is smaller
where b does not divide n.

Cost assumptions (docs/task_graphs.md): a TRSM runs as a matrix product half as deep as its
triangle (its FLOPs: b^2 per row); a GETRF is two tasks: its pivot searches and swaps, one
kernel per column (`kernels` = b) on one core, and its elimination, recursive as dgetrf2 does
it: its FLOPs in products of depth b/2, the panel read and written once per level of the
recursion. The `panels` factorisation is one library call (scipy's lu_factor -> dgetrf,
torch.linalg.lu_factor -> cuSOLVER's getrf): the program dispatches it once (`calls` = 1 on
the first task, 0 on the others) and the library launches every kernel after that itself,
from native code. The `tiles` tasks are each issued by the program.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.core.errors import UserError, format_path, shown, unknown_name
from workloads.ops import DTYPE_BYTES
from workloads.task_graph import (
    MAX_TASKS,
    TASK_GRAPH,
    Dtype,
    GemmShape,
    TaskDef,
    TaskGraph,
    TaskKind,
    parse_task_graph,
)

MAX_N = 2**20  # a 2^20-sided fp64 matrix is 8 TiB
Side = Annotated[int, Field(strict=True, ge=1, le=MAX_N)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TiledGemmArgs(_Args):
    kind: Literal["tiled_gemm"] = "tiled_gemm"
    n: Side
    tile: Side
    dtype: Dtype = "fp32"


class BlockedLUArgs(_Args):
    kind: Literal["blocked_lu"] = "blocked_lu"
    n: Side
    block: Side
    dtype: Dtype = "fp64"
    layout: Literal["panels", "tiles"] = "panels"


def _blocks(n: int, b: int) -> list[int]:
    """Block sizes along one side: b, b, ..., and the remainder."""
    return [min(b, n - start) for start in range(0, n, b)]


def _check_tasks(count: int, what: str) -> None:
    if count > MAX_TASKS:
        raise UserError(f"{what} make {count:,} tasks, more than {MAX_TASKS:,}; use a larger "
                        "block (or the panels layout)")


def _task(name: str, kind: TaskKind, group: str, flops: float, read: float, written: float,
          dtype: Dtype, gemm: GemmShape | None, after: list[str], kernels: int = 1,
          items: int | None = None) -> TaskDef:
    """A task built by a generator: correct by construction, so not validated again."""
    return TaskDef.model_construct(name=name, kind=kind, group=group, flops=float(flops),
                                   bytes_read=float(read), bytes_written=float(written),
                                   dtype=dtype, parallelism=items, kernels=kernels, gemm=gemm,
                                   after=after)


def _shape(m: int, n: int, k: int) -> GemmShape:
    return GemmShape.model_construct(m=m, n=n, k=max(1, k), batch=1)


def _graph(name: str, description: str, tasks: list[TaskDef], data_bytes: float) -> TaskGraph:
    return TaskGraph.model_construct(kind=TASK_GRAPH, name=name, description=description,
                                     sources=[], memory_bytes=float(data_bytes), tasks=tasks)


def tiled_gemm(args: TiledGemmArgs) -> TaskGraph:
    n, dtype, e = args.n, args.dtype, DTYPE_BYTES[args.dtype]
    sizes = _blocks(n, min(args.tile, n))
    _check_tasks(len(sizes) ** 3, f"n = {n:,} in tiles of {args.tile:,}")
    tasks = []
    for i, ti in enumerate(sizes):
        for j, tj in enumerate(sizes):
            for k, tk in enumerate(sizes):
                after = [f"gemm.{i}.{j}.{k - 1}"] if k else []
                tasks.append(_task(f"gemm.{i}.{j}.{k}", "gemm", "gemm", 2.0 * ti * tj * tk,
                                   e * (ti * tk + tk * tj + ti * tj), e * ti * tj, dtype,
                                   _shape(ti, tj, tk), after))
    return _graph(f"tiled_gemm-n{n}-t{args.tile}", f"C = A B, {n} x {n} {dtype}, tiles of "
                  f"{args.tile}", tasks, 3.0 * e * n * n)


def getrf_flops(m: int, n: int) -> float:
    """Gaussian elimination of an m x n panel (m >= n): per column j, m - j - 1 divisions
    and a rank-1 update of (m - j - 1) x (n - j - 1)."""
    return float(sum((m - j - 1) * (1 + 2 * (n - j - 1)) for j in range(n)))


def _getrf(name: str, m: int, b: int, dtype: Dtype, after: list[str]) -> list[TaskDef]:
    """A panel's pivot searches and swaps (one kernel per column, on one core: `kernels` = b,
    no FLOPs counted), then its elimination as a recursive factorisation does it (dgetrf2):
    products of depth b / 2, the panel read and written once per level of the recursion."""
    e = DTYPE_BYTES[dtype]
    levels = max(1, math.ceil(math.log2(b))) if b > 1 else 1
    column_reads = sum(m - j for j in range(b))
    pivots = _task(f"{name}.pivots", "reduction", "getrf", 0.0, e * column_reads, e * 2 * b * b,
                   dtype, None, after, kernels=b, items=1)
    return [pivots, _task(name, "gemm", "getrf", getrf_flops(m, b), e * m * b * levels,
                          e * m * b * levels, dtype, _shape(m, b, b // 2), [pivots.name],
                          items=m)]


def _trsm_rows(name: str, b: int, w: int, dtype: Dtype, after: list[str]) -> TaskDef:
    """L^-1 B: a unit lower b x b triangle applied to a b x w block (b (b - 1) w FLOPs)."""
    e = DTYPE_BYTES[dtype]
    return _task(name, "gemm", "trsm", float(b * (b - 1) * w), e * (b * b / 2 + b * w),
                 e * b * w, dtype, _shape(b, w, b // 2), after)


def _trsm_cols(name: str, h: int, b: int, dtype: Dtype, after: list[str]) -> TaskDef:
    """B U^-1: an upper b x b triangle applied to an h x b block (h b^2 FLOPs)."""
    e = DTYPE_BYTES[dtype]
    return _task(name, "gemm", "trsm", float(h * b * b), e * (b * b / 2 + h * b), e * h * b,
                 dtype, _shape(h, b, b // 2), after)


def _update(name: str, h: int, w: int, b: int, dtype: Dtype, after: list[str]) -> TaskDef:
    e = DTYPE_BYTES[dtype]
    return _task(name, "gemm", "gemm", 2.0 * h * w * b, e * (h * b + b * w + h * w),
                 e * h * w, dtype, _shape(h, w, b), after)


def _lu_panels(n: int, sizes: list[int], dtype: Dtype) -> list[TaskDef]:
    e, off = DTYPE_BYTES[dtype], 0
    tasks: list[TaskDef] = []
    prev: list[str] = []
    for k, b in enumerate(sizes):
        m, w = n - off, n - off - b
        tasks.extend(_getrf(f"getrf.{k}", m, b, dtype, prev))
        tasks.append(_task(f"laswp.{k}", "elementwise", "laswp", 0.0, e * b * (n - b),
                           e * b * (n - b), dtype, None, [f"getrf.{k}"], items=n - b))
        prev = [f"laswp.{k}"]
        if w:
            tasks.append(_trsm_rows(f"trsm.{k}", b, w, dtype, prev))
            tasks.append(_update(f"gemm.{k}", w, w, b, dtype, [f"trsm.{k}"]))
            prev = [f"gemm.{k}"]
        off += b
    return tasks


def _lu_tiles(sizes: list[int], dtype: Dtype) -> list[TaskDef]:
    tasks: list[TaskDef] = []
    nb = len(sizes)

    def last(i: int, j: int, k: int) -> list[str]:  # the previous update of tile (i, j)
        return [f"gemm.{i}.{j}.{k - 1}"] if k else []

    for k in range(nb):
        b = sizes[k]
        tasks.extend(_getrf(f"getrf.{k}", b, b, dtype, last(k, k, k)))
        for j in range(k + 1, nb):
            tasks.append(_trsm_rows(f"trsm.{k}.{j}", b, sizes[j], dtype,
                                    [f"getrf.{k}", *last(k, j, k)]))
        for i in range(k + 1, nb):
            tasks.append(_trsm_cols(f"trsm.{i}.{k}", sizes[i], b, dtype,
                                    [f"getrf.{k}", *last(i, k, k)]))
        for i in range(k + 1, nb):
            for j in range(k + 1, nb):
                tasks.append(_update(f"gemm.{i}.{j}.{k}", sizes[i], sizes[j], b, dtype,
                                     [f"trsm.{i}.{k}", f"trsm.{k}.{j}", *last(i, j, k)]))
    return tasks


def lu_task_count(blocks: int, layout: str) -> int:
    """Tasks of a blocked LU of `blocks` block columns (the last step has no TRSM or GEMM)."""
    if layout == "panels":
        return 5 * blocks - 2
    return 2 * blocks + blocks * (blocks - 1) + (blocks - 1) * blocks * (2 * blocks - 1) // 6


def blocked_lu(args: BlockedLUArgs) -> TaskGraph:
    n, dtype = args.n, args.dtype
    sizes = _blocks(n, min(args.block, n))
    _check_tasks(lu_task_count(len(sizes), args.layout),
                 f"n = {n:,} in blocks of {args.block:,} ({args.layout})")
    if args.layout == "panels":  # one library call: dispatched once, its kernels its own
        tasks = [t.model_copy(update={"calls": 1 if i == 0 else 0})
                 for i, t in enumerate(_lu_panels(n, sizes, dtype))]
    else:
        tasks = _lu_tiles(sizes, dtype)
    return _graph(f"lu-n{n}-b{args.block}", f"blocked LU of {n} x {n} {dtype}, blocks of "
                  f"{args.block}, {args.layout}", tasks, DTYPE_BYTES[dtype] * n * n)


Generator = tuple[type[_Args], Callable[[Any], TaskGraph]]
GENERATORS: dict[str, Generator] = {"tiled_gemm": (TiledGemmArgs, tiled_gemm),
                                    "blocked_lu": (BlockedLUArgs, blocked_lu)}
WORKLOAD_KINDS = (TASK_GRAPH, *GENERATORS)
_SPEC = re.compile(r"^([a-z_]+):((?:[a-z_]+=[A-Za-z0-9_]+,?)*)$")


def generate(data: dict[str, Any], where: str, source: Any = None) -> TaskGraph:
    """The task graph of a generator mapping `{kind: blocked_lu, n: 4096, block: 256}`."""
    kind = data.get("kind")
    if kind not in GENERATORS:
        what = str(unknown_name("workload kind", str(kind), list(WORKLOAD_KINDS)))
        if source is not None:
            raise source.error(("kind",), what)
        raise UserError(f"{where}: kind: {what}")
    model, make = GENERATORS[str(kind)]
    try:
        args = model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        what = ("unknown field" if first["type"] == "extra_forbidden" else
                f"{first['msg'].replace('Input should be', 'must be')}, got "
                f"{shown(first.get('input'))}")
        if source is not None:
            raise source.error(first["loc"], what) from None
        raise UserError(f"{where}: {format_path(first['loc'])}: {what}") from None
    return make(args)


def parse_spec_string(text: str) -> dict[str, Any] | None:
    """`blocked_lu:n=4096,block=256` -> the generator mapping; None if `text` is not one."""
    match = _SPEC.match(text)
    if match is None or match.group(1) not in GENERATORS:
        return None
    data: dict[str, Any] = {"kind": match.group(1)}
    for item in filter(None, match.group(2).split(",")):
        key, value = item.split("=")
        data[key] = int(value) if value.isdigit() else value
    return data


def task_workload(data: dict[str, Any], where: str, source: Any = None) -> TaskGraph:
    """A mapping with `kind:`: a task graph (`kind: task_graph`) or a generator's arguments."""
    if data.get("kind") == TASK_GRAPH:
        return parse_task_graph(data, where, source)
    return generate(data, where, source)
