"""Tests of simulator.measure: the quick numpy sweep, the GPU guard, the im2col convolution,
and the measurement files committed under measurements/."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from simulator.calibrate.device import calibrate_profile
from simulator.calibrate.measured_ops import load_measurements
from simulator.core.errors import UserError
from simulator.measure.backend import Backend
from simulator.measure.conv import ConvWork
from simulator.measure.records import COMMON_FIELDS, SCHEMA, SHAPE_FIELDS, check_record
from simulator.measure.runner import run_measure
from simulator.measure.shapes import ConvLayer, conv_gemms, conv_layer

MEASUREMENTS = Path(__file__).resolve().parent.parent / "measurements"


def _gpu_present() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no driver, no device, ...
        return False


def _check_times(record: dict) -> None:
    times = record["times_s"]
    assert len(times) == record["reps"] >= 1
    assert all(math.isfinite(t) and t > 0 for t in times)
    assert min(times) == record["min_s"] <= record["median_s"] <= max(times)


def test_quick_numpy_run_writes_a_valid_file(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    run_measure(backend="numpy", out=str(out), quick=True)
    doc = json.loads(out.read_text())
    assert doc["schema"] == SCHEMA and doc["backend"] == "numpy"
    assert {"date", "command", "device", "software", "records"} <= set(doc)
    assert doc["device"]["logical_cpus"] >= 1 and doc["software"]["numpy"] == np.__version__
    ops = {r["op"] for r in doc["records"]}
    assert {
        "gemm",
        "conv2d_fwd",
        "conv2d_bwd_data",
        "conv2d_bwd_weight",
        "relu",
        "add",
        "sum",
        "maxpool2d",
        "launch",
    } <= ops
    assert {r["threads"] for r in doc["records"]} >= {1}
    for record in doc["records"]:
        check_record(record)
        _check_times(record)
        assert record["flops"] >= 0 and record["bytes"] >= 0
    gemm = next(r for r in doc["records"] if r["op"] == "gemm" and r["dtype"] == "fp32")
    assert gemm["flops"] == 2 * gemm["m"] * gemm["n"] * gemm["k"]
    assert gemm["bytes"] == 4 * (
        gemm["m"] * gemm["k"] + gemm["k"] * gemm["n"] + gemm["m"] * gemm["n"]
    )
    # fp64 products (LAPACK's dgemm: LU, the task graphs) are timed too, 8 bytes an element
    dgemm = next(r for r in doc["records"] if r["op"] == "gemm" and r["dtype"] == "fp64")
    assert dgemm["bytes"] == 8 * (
        dgemm["m"] * dgemm["k"] + dgemm["k"] * dgemm["n"] + dgemm["m"] * dgemm["n"]
    )
    # the CPU's own clock and last-level cache, where the kernel reports them
    assert doc["device"].get("clock_hz", 1.0) > 0 and doc["device"].get("cache_bytes", 1.0) > 0
    # numpy's fp64 products are BLAS, fitted as the fp64 units' efficiency (not as a loop of
    # numpy's own, which another framework would not share)
    records = load_measurements([out])
    fitted = calibrate_profile(records, "epyc-zen4-2vcpu")
    assert "fp64" in fitted.gemm_efficiency and "gemm.fp64" not in fitted.gemm_efficiency


def test_unknown_backend_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="valid backend names"):
        run_measure(backend="tpu", out=str(tmp_path / "x.json"), quick=True)


@pytest.mark.skipif(_gpu_present(), reason="CuPy and a GPU are present")
def test_cupy_without_gpu_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cupy"):
        run_measure(backend="cupy", out=str(tmp_path / "x.json"), quick=True)
    assert not (tmp_path / "x.json").exists()


def test_conv_gemm_shapes_follow_the_implicit_gemm_rules() -> None:
    fwd, bwd_data, bwd_weight = conv_gemms(conv_layer("conv3_1"), 16)
    pixels = 16 * 56 * 56
    assert (fwd.m, fwd.n, fwd.k) == (pixels, 256, 128 * 9)
    assert (bwd_data.m, bwd_data.n, bwd_data.k) == (pixels, 128, 256 * 9)
    assert (bwd_weight.m, bwd_weight.n, bwd_weight.k) == (256, 128 * 9, pixels)


def _direct_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """3x3, stride 1, padding 1 convolution (cross-correlation) by explicit shifts, float64."""
    n, _, s, _ = x.shape
    pad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((n, w.shape[0], s, s))
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,oc->nohw", pad[:, :, i : i + s, j : j + s], w[:, :, i, j])
    return y


def _run(parts: list) -> None:
    for _, fn in parts:
        fn()


def test_im2col_convolution_forward_and_backward_are_correct() -> None:
    work = ConvWork(Backend("numpy", quick=True, threads=None), ConvLayer("t", 3, 5, 6), 2, "fp32")
    _run(work.forward_parts())
    np.testing.assert_allclose(work.y, _direct_conv(work.x, work.w), rtol=1e-4, atol=1e-4)
    _run(work.backward_data_parts())
    _run(work.backward_weight_parts())
    # Adjoint identities of the linear map y = conv(x, w): <conv(x, w), dy> equals both
    # <x, dx(dy, w)> and <w, dw(x, dy)>.
    inner = float(np.sum(_direct_conv(work.x, work.w) * work.dy))
    assert float(np.sum(work.x.astype(np.float64) * work.dx)) == pytest.approx(inner, rel=1e-4)
    assert float(np.sum(work.w.astype(np.float64) * work.dw)) == pytest.approx(inner, rel=1e-4)


def _committed() -> list[Path]:
    return sorted(p for p in MEASUREMENTS.glob("*.json"))


@pytest.mark.parametrize("path", _committed(), ids=lambda p: p.name)
def test_committed_measurements_load_and_have_the_required_keys(path: Path) -> None:
    doc = json.loads(path.read_text())
    if doc.get("schema") not in (SCHEMA, "simulator.torch-steps/1"):
        pytest.skip(f"{doc.get('schema')} is checked by its own tests")
    if doc.get("schema") == "simulator.torch-steps/1":
        assert doc["records"], "no torch step records"
        for record in doc["records"]:
            assert {"model", "mode", "batch", "precision"} <= set(record)
            if "error" not in record:
                assert record["median_s"] > 0 and record["max_memory_allocated_bytes"] > 0
        return
    assert doc["schema"] == SCHEMA and doc["backend"] in ("numpy", "cupy", "pytorch")
    assert {"date", "command", "device", "software", "records"} <= set(doc)
    assert path.stat().st_size < 2_000_000
    for record in doc["records"]:
        check_record(record)
        _check_times(record)
        assert set(COMMON_FIELDS) | set(SHAPE_FIELDS[record["op"]]) <= set(record)


def test_cupy_plans_time_tf32_on_every_gemm_and_conv_shape() -> None:
    # Regression: the TF32 worker once timed only the square GEMMs.
    from simulator.measure.gemm import _cases
    from simulator.measure.plan import CUPY_FULL

    tf32 = _cases(CUPY_FULL, "tf32", numpy_fp16=False)
    assert len(tf32) == len(_cases(CUPY_FULL, "fp32", numpy_fp16=False)) > 7
    assert "tf32" in CUPY_FULL.conv_dtypes


def test_pytorch_backend_without_torch_or_gpu_is_a_user_error(tmp_path: Path) -> None:
    from simulator.core.errors import UserError
    from simulator.measure.runner import run_measure

    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is present: the pytorch backend would run")
    except ImportError:
        pass
    with pytest.raises(UserError, match="pytorch"):
        run_measure(backend="pytorch", out=str(tmp_path / "x.json"), quick=True)
    assert not (tmp_path / "x.json").exists()
