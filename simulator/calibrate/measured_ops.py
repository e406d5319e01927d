"""Measured kernels as simulator ops: turn one measurement record into the Op the cost model
prices, so calibration and validation use exactly the model that `predict` uses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from simulator.core.json_source import read_json_object, record_list
from workloads.ops import Gemm, Op, OpKind

SCHEMA = "simulator.measurements/1"
FAMILY = {
    "gemm": "gemm", "relu": "elementwise", "add": "elementwise", "sum": "elementwise",
    "maxpool2d": "elementwise", "maxpool2d_bwd": "elementwise", "bias_add": "elementwise",
    "bias_grad": "elementwise", "im2col": "elementwise", "col2im": "elementwise",
    "copy_h2d": "copy", "copy_d2h": "copy", "launch": "launch",
    "conv2d_fwd": "conv", "conv2d_bwd_data": "conv", "conv2d_bwd_weight": "conv",
}
KIND: dict[str, OpKind] = {
    "relu": "elementwise", "add": "elementwise", "sum": "reduction", "maxpool2d": "pool",
    "maxpool2d_bwd": "pool", "bias_add": "elementwise", "bias_grad": "reduction",
    "im2col": "elementwise", "col2im": "elementwise",
}


def load_measurements(paths: list[Any]) -> list[dict[str, Any]]:
    """All records of the given files, each tagged with its file and backend."""
    records = []
    for path in map(Path, paths):
        data = read_json_object(path, "kernel measurements", SCHEMA)
        for rec in record_list(data, path):
            records.append({**rec, "file": path.name, "backend": data.get("backend")})
    if not records:
        raise UserError(f"{', '.join(map(str, paths))}: no measurement records")
    return records


POOL_KERNELS = ("maxpool2d", "maxpool2d_bwd")


def _pool_items(rec: dict[str, Any]) -> int:
    """A pooling kernel's work items as the layer kinds count them: its output elements
    forward, its input elements backward (the records: square windows, stride = window)."""
    inputs = int(rec["batch"]) * int(rec["channels"]) * int(rec["height"]) * int(rec["width"])
    return inputs if rec["op"].endswith("_bwd") else inputs // int(rec["stride"]) ** 2


def record_op(rec: dict[str, Any]) -> Op | None:
    """The op a record measured, or None for records the op model does not price (launch)."""
    op, dtype = rec["op"], rec["dtype"]
    if op == "gemm":
        g = Gemm(int(rec["m"]), int(rec["n"]), int(rec["k"]))
        return Op(rec["label"], "gemm", "fwd", "measured", g.flops, rec["bytes"] * 2 / 3,
                  rec["bytes"] / 3, dtype, g.m * g.n, gemm=g)
    if op in KIND:
        elements = _pool_items(rec) if op in POOL_KERNELS else \
            int(rec.get("elements") or rec["bytes"] / 4)
        kernel = (("kernel", op),) if op != "sum" else ()
        return Op(rec["label"], KIND[op], "fwd", "measured", rec["flops"], rec["bytes"] * 2 / 3,
                  rec["bytes"] / 3, dtype, elements, attrs=kernel)
    if op in ("copy_h2d", "copy_d2h"):
        size = float(rec["bytes_moved"])
        return Op(rec["label"], "copy", "input", "measured", 0.0, size, size, dtype, 1,
                  attrs=(("bytes_moved", size), ("pinned", bool(rec["pinned"]))))
    return None


DTYPE_PRECISION = {"fp32": "fp32-strict", "tf32": "tf32", "bf16": "bf16", "fp16": "fp16"}


def _conv_ops(rec: dict[str, Any]) -> list[Op]:
    """A measured convolution as the simulator builds it: the algorithm PyTorch and cuDNN run
    for its shape for the pytorch backend, explicit im2col lowering (im2col, GEMM, col2im) for
    numpy and CuPy; the ops the builder makes of it in the record's dtype."""
    from workloads.builder import work_op
    from workloads.layers import conv2d
    from workloads.precision import get_precision

    algorithm = "implicit_gemm" if rec.get("backend") == "pytorch" else "im2col"
    args = {"out_channels": rec["out_channels"], "kernel": rec["kernel"], "algorithm": algorithm,
            "stride": rec["stride"], "padding": rec["padding"], "bias": False}
    cost = conv2d([(rec["in_channels"], rec["height"], rec["width"])], args, int(rec["batch"]))
    work = {"conv2d_fwd": cost.fwd, "conv2d_bwd_data": cost.bwd_data,
            "conv2d_bwd_weight": cost.bwd_weight}[rec["op"]]
    assert work is not None
    prec = get_precision(DTYPE_PRECISION.get(rec["dtype"], "fp32-strict"))
    parts = [w for w in (work.prologue, work, work.epilogue) if w is not None]
    ops = [work_op(f"{rec['label']}.{i}", "fwd", "measured", w, prec, prec.act_bytes)
           for i, w in enumerate(parts)]
    return [replace(op, dtype=rec["dtype"]) for op in ops]


def record_ops(rec: dict[str, Any]) -> list[Op]:
    """The kernels a record measured (none for launch records, which the op model does not
    price): one op, or the im2col, GEMM and col2im of a lowered convolution."""
    if rec["op"].startswith("conv2d_"):
        return _conv_ops(rec)
    op = record_op(rec)
    return [] if op is None else [op]


def family(rec: dict[str, Any]) -> str:
    return FAMILY.get(rec["op"], "other")
