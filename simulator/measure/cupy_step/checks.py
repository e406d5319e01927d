"""Checks of the CuPy VGG16 step: its op sequence against the simulator's graph, and each
GPU kernel against the numpy reference.

Holds:
- `check_graph(batch, precision, image)`: where the step's ops differ from
  `build_graph(load_model("vgg16"), ..., conv_algorithm="im2col")` (empty list: nowhere);
  runs one step on numpy, and needs the simulator's dependencies (pydantic, networkx).
- `self_test(ops)`: every kernel of `ops` against `NumpyOps` on small random shapes, per
  dtype (float32, float16): max abs error and ok per kernel, and "all_ok".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from simulator.measure.cupy_step.layout import step_layers
from simulator.measure.cupy_step.model import VGGStep
from simulator.measure.cupy_step.reference_ops import NumpyOps

Close = Callable[[str, Any, Any, float], None]


def _sequence_problems(precision: str, ours: list[str], expected: list[str]) -> list[str]:
    if ours == expected:
        return []
    missing = [x for x in expected if x not in ours]
    extra = [x for x in ours if x not in expected]
    problems = [f"{precision}: op sequence differs: missing {missing}, extra {extra}"]
    for i, (a, b) in enumerate(zip(ours, expected, strict=False)):
        if a != b:
            problems.append(f"{precision}: first difference at {i}: ours {a}, graph {b}")
            break
    return problems


def check_graph(batch: int, precision: str, image: int) -> list[str]:
    """Problems where this step's ops differ from the simulator's graph (empty: none)."""
    from workloads.builder import build_graph
    from workloads.model_def import load_model

    model = load_model("vgg16")
    problems = []
    theirs = [(layer.name, layer.kind) for layer in model.layers]
    if theirs != [(layer.name, layer.kind) for layer in step_layers()]:
        problems.append(f"layer list differs from vgg16.yaml: {theirs}")
    graph = build_graph(model, batch, "train", precision, conv_algorithm="im2col")
    expected = [op.name for op in graph.ops() if op.name != "input.h2d"]
    step = VGGStep(NumpyOps(), batch, precision, image, lr=0.0)
    marks: list = []
    step.step(marks=marks)
    problems += _sequence_problems(precision, [name for name, _ in marks], expected)
    if step.n_params != graph.params and image == 224:
        problems.append(f"params {step.n_params} != graph {graph.params}")
    return problems


def self_test(ops: NumpyOps) -> dict[str, Any]:
    """Each kernel of `ops` (CupyOps on a GPU) against the numpy reference on small random
    shapes."""
    rng = np.random.default_rng(5)
    results: dict[str, Any] = {}

    def close(name: str, got: Any, want: Any, tol: float) -> None:
        got_h = ops.to_host(got).astype(np.float64)
        want_h = np.asarray(want).astype(np.float64)
        err = float(np.max(np.abs(got_h - want_h))) if want_h.size else 0.0
        results[name] = {"max_abs_err": err, "ok": bool(err <= tol)}

    for dt, tol in ((np.float32, 1e-5), (np.float16, 2e-2)):
        tag = np.dtype(dt).name
        try:
            _self_test_dtype(ops, NumpyOps(), rng, dt, tag, tol, close)
        except Exception as exc:  # noqa: BLE001 - record which kernel failed, go on
            results[f"error.{tag}"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    results["all_ok"] = all(v["ok"] for v in results.values() if isinstance(v, dict))
    return results


def _self_test_dtype(ops: NumpyOps, ref: NumpyOps, rng: Any, dt: Any, tag: str, tol: float,
                     close: Close) -> None:
    x = rng.standard_normal((2, 6, 6, 5)).astype(dt)
    _check_patches(ops, ref, rng, x, tag, tol, close)
    _check_pooling(ops, ref, rng, x, tag, close)
    _check_pointwise(ops, ref, rng, x, tag, tol, close)


def _check_patches(ops: NumpyOps, ref: NumpyOps, rng: Any, x: np.ndarray, tag: str,
                   tol: float, close: Close) -> None:
    """im2col (exact) and col2im on a (2, 6, 6, 5) input: a (72, 45) patch matrix."""
    xp, dt = ops.xp, x.dtype
    cols_ref = np.empty((72, 45), dt)
    ref.im2col(x, cols_ref)
    cols = xp.empty((72, 45), dt)
    ops.im2col(xp.array(x), cols)
    close(f"im2col.{tag}", cols, cols_ref, 0.0)
    gc = rng.standard_normal((72, 45)).astype(dt)
    close(f"col2im.{tag}", ops.col2im(xp.array(gc), x.shape), ref.col2im(gc, x.shape), tol)


def _check_pooling(ops: NumpyOps, ref: NumpyOps, rng: Any, x: np.ndarray, tag: str,
                   close: Close) -> None:
    """Max pooling's values, argmax indices and backward scatter (all exact)."""
    xp = ops.xp
    y, idx = ops.maxpool(xp.array(x))
    y_ref, idx_ref = ref.maxpool(x)
    close(f"maxpool.{tag}", y, y_ref, 0.0)
    close(f"maxpool_idx.{tag}", idx, idx_ref, 0.0)
    gy = rng.standard_normal(y_ref.shape).astype(x.dtype)
    close(f"maxpool_bwd.{tag}", ops.maxpool_bwd(xp.array(gy), idx, x.shape),
          ref.maxpool_bwd(gy, idx_ref, x.shape), 0.0)


def _check_pointwise(ops: NumpyOps, ref: NumpyOps, rng: Any, x: np.ndarray, tag: str,
                     tol: float, close: Close) -> None:
    """Dropout (values and mask), the loss forward and backward, and ReLU."""
    xp, dt = ops.xp, x.dtype
    xd, md = ops.dropout(xp.array(x), 99, 0.5)
    xr, mr = ref.dropout(x, 99, 0.5)
    close(f"dropout.{tag}", xd, xr, tol)
    close(f"dropout_mask.{tag}", md, mr, 0.0)
    logits = rng.standard_normal((3, 10)).astype(dt)
    labels = np.array([1, 7, 0], np.int32)
    loss, lse = ops.loss_fwd(xp.array(logits), xp.array(labels))
    loss_r, lse_r = ref.loss_fwd(logits, labels)
    close(f"loss.{tag}", loss, loss_r, 1e-4)
    g, g_r = xp.empty((3, 10), dt), np.empty((3, 10), dt)
    ops.loss_bwd(xp.array(logits), xp.array(labels), lse, g)
    ref.loss_bwd(logits, labels, lse_r, g_r)
    close(f"loss_bwd.{tag}", g, g_r, 1e-3)
    r = xp.array(x)
    ops.relu_(r)
    close(f"relu.{tag}", r, np.maximum(x, 0), 0.0)
