"""The CuPy VGG16 step's CPU self-test: the whole step on numpy standing in for CuPy.

`simulator.measure.cupy_step` runs on numpy through `NumpyOps` (what
`benchmarks/cupy_vgg16_step.py --backend numpy --image 32 --check-graph` does): the op
sequence must be the simulator's im2col graph, the loss must go down, and the measurement
file must have its schema. The numpy kernels, which the CuPy kernels are tested against on a
GPU (`checks.self_test`), are checked here against direct definitions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulator.measure.cupy_step.checks import check_graph, self_test
from simulator.measure.cupy_step.layout import param_layout, step_layers
from simulator.measure.cupy_step.reference_ops import NumpyOps, hash_uniform_np
from simulator.measure.cupy_step.run import SCHEMA, StepSettings, run_step_benchmark

IMAGE = 32  # shrunken input: the convolutions run at 32..2 pixels, fc6 is as in VGG16
RNG = np.random.default_rng(3)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_the_step_is_the_simulators_im2col_graph(precision: str) -> None:
    # batch 1 (the script checks at 2): the op sequence does not depend on it, and numpy's
    # float16 matrix products (no BLAS) take seconds at fc6's size
    assert check_graph(1, precision, IMAGE) == []


def test_the_parameters_are_vgg16s() -> None:
    params, count = param_layout(step_layers())
    assert count == 138_357_544
    assert (params["conv1_1"].out, params["conv1_1"].fan_in) == (64, 27)
    assert (params["fc6"].out, params["fc6"].fan_in) == (4096, 25088)
    assert params["fc8"].offset + params["fc8"].size == count


def test_the_kernel_self_test_runs_on_numpy() -> None:
    results = self_test(NumpyOps())
    assert results["all_ok"], results
    kernels = {"im2col", "col2im", "maxpool", "maxpool_idx", "maxpool_bwd", "dropout",
               "dropout_mask", "loss", "loss_bwd", "relu"}
    assert {f"{k}.{dt}" for k in kernels for dt in ("float32", "float16")} <= set(results)


@pytest.mark.slow
def test_the_measurement_file_has_its_schema(tmp_path: Path) -> None:
    out = tmp_path / "step.json"
    settings = StepSettings(out=str(out), backend="numpy", batches="2", precisions="fp32",
                            image=IMAGE, warmup=0, steps=1, check_batch=0)
    run_step_benchmark(settings, "python3 benchmarks/cupy_vgg16_step.py")
    doc = json.loads(out.read_text())
    assert doc["schema"] == SCHEMA == "simulator.cupy-steps/1"
    assert {"command", "date", "device", "notes", "records", "settings", "software"} <= set(doc)
    assert doc["settings"] == {"image": IMAGE, "lr": 1e-4, "momentum": 0.9, "dropout_p": 0.5,
                               "warmup": 0, "steps": 1, "layout": "NHWC"}
    (record,) = doc["records"]
    assert {"backend", "batch", "conv_algorithm", "final_loss", "host_enqueue_median_s",
            "image", "loss_check", "loss_decreased", "median_s", "min_s", "mode", "model",
            "phases_median_s", "precision", "profiled_step", "reps", "times_s",
            "warmup_steps"} == set(record)
    assert record["backend"] == "numpy" and record["loss_decreased"], record["loss_check"]
    assert abs(record["loss_check"]["losses"][0] - np.log(1000)) < 1.0  # chance at the start
    ops = record["profiled_step"]["ops_s"]
    assert record["profiled_step"]["op_count"] == len(ops)
    assert {"conv1_1.fwd.prologue", "conv1_1.fwd", "conv1_1.fwd.epilogue", "loss.fwd",
            "conv2_1.bwd_data.epilogue", "optimizer.step"} <= set(ops)
    assert "conv1_1.bwd_data" not in ops  # no input gradient for the first layer


def _direct_conv_nhwc(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """3x3, padding 1 cross-correlation; w is (out, kh, kw, in)."""
    n, h, wd, _ = x.shape
    pad = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = np.zeros((n, h, wd, w.shape[0]))
    for i in range(3):
        for j in range(3):
            y += np.einsum("nhwc,oc->nhwo", pad[:, i:i + h, j:j + wd, :], w[:, i, j, :])
    return y


def test_im2col_then_gemm_is_the_convolution_and_col2im_its_adjoint() -> None:
    ops = NumpyOps()
    x = RNG.standard_normal((2, 5, 4, 3)).astype(np.float32)
    w = RNG.standard_normal((6, 3, 3, 3)).astype(np.float32)
    cols = np.empty((2 * 5 * 4, 9 * 3), np.float32)
    ops.im2col(x, cols)
    y = (cols @ w.reshape(6, -1).T).reshape(2, 5, 4, 6)
    np.testing.assert_allclose(y, _direct_conv_nhwc(x, w), rtol=1e-4, atol=1e-4)
    g = RNG.standard_normal(cols.shape).astype(np.float32)
    lhs = float(np.sum(cols.astype(np.float64) * g))
    assert float(np.sum(x * ops.col2im(g, x.shape).astype(np.float64))) == pytest.approx(lhs)


def test_maxpool_keeps_the_window_maxima_and_scatters_back_to_them() -> None:
    ops = NumpyOps()
    x = RNG.standard_normal((2, 4, 6, 3)).astype(np.float32)
    y, idx = ops.maxpool(x)
    windows = x.reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(y, windows)
    np.testing.assert_array_equal(x.ravel()[idx], y)
    g = RNG.standard_normal(y.shape).astype(np.float32)
    dx = ops.maxpool_bwd(g, idx, x.shape)
    assert float(np.sum(dx * x)) == pytest.approx(float(np.sum(g * y)), rel=1e-5)


def test_loss_and_its_gradient_are_softmax_cross_entropy() -> None:
    ops = NumpyOps()
    logits = RNG.standard_normal((4, 10)).astype(np.float32)
    labels = np.array([0, 3, 9, 3], np.int32)
    loss, lse = ops.loss_fwd(logits, labels)
    p = np.exp(logits.astype(np.float64))
    p /= p.sum(axis=1, keepdims=True)
    assert float(loss) == pytest.approx(-np.mean(np.log(p[np.arange(4), labels])), rel=1e-5)
    grad = np.empty_like(logits)
    ops.loss_bwd(logits, labels, lse, grad)
    p[np.arange(4), labels] -= 1.0
    np.testing.assert_allclose(grad, p / 4, atol=1e-6)


def test_dropout_keeps_about_half_and_rescales() -> None:
    ops = NumpyOps()
    x = np.ones((64, 1024), np.float32)
    y, mask = ops.dropout(x, seed=52, p=0.5)
    assert 0.48 < mask.mean() < 0.52
    np.testing.assert_array_equal(y, 2.0 * mask)
    np.testing.assert_array_equal(hash_uniform_np(10, 52), hash_uniform_np(10, 52))
    assert not np.array_equal(hash_uniform_np(10, 52), hash_uniform_np(10, 53))


def test_adaptive_average_pool_and_its_backward_are_adjoint() -> None:
    ops = NumpyOps()
    x = RNG.standard_normal((1, 3, 5, 2)).astype(np.float32)
    y = ops.adaptive_avgpool(x, 7)
    assert y.shape == (1, 7, 7, 2)
    g = RNG.standard_normal(y.shape).astype(np.float32)
    dx = ops.adaptive_avgpool_bwd(g, x.shape)
    assert float(np.sum(dx * x)) == pytest.approx(float(np.sum(g * y)), rel=1e-5)
    same = RNG.standard_normal((1, 7, 7, 2)).astype(np.float32)
    np.testing.assert_allclose(ops.adaptive_avgpool(same, 7), same, rtol=1e-6)
