"""Calibration recovers a known profile from synthetic measurements, the fitter works,
and validation reports errors per op kind."""

from __future__ import annotations

import json
import math

import pytest

from hardware_models.catalog_io import build_device, load_spec
from hardware_models.profile import Profile
from simulator.calibrate.device import calibrate_profile
from simulator.calibrate.fit import fit
from simulator.calibrate.measured_ops import load_measurements, record_op, record_ops
from simulator.core.errors import UserError
from simulator.validate.compare import compare, summarise

TRUE = Profile(device="h100-sxm", origin="calibrated", gemm_efficiency={"fp32": 0.7, "fp16": 0.6},
               gemm_tile=(128, 256), gemm_half_dim=300.0, memory_efficiency=0.85,
               kernel_overhead_s=3e-6, copy_efficiency={"pinned": 0.8, "pageable": 0.4},
               copy_overhead_s=1e-5, launch_s=5e-6)


def synthetic_records(profile: Profile, noise: float = 0.02) -> list[dict]:
    """Records as the measure command writes them, timed by the model itself plus noise."""
    device = build_device(load_spec(profile.device), profile)
    recs = []
    for n in [256, 512, 1024, 2048, 4096, 8192]:
        for dtype in ("fp32", "fp16"):
            size = 2 if dtype == "fp16" else 4
            recs.append({"op": "gemm", "dtype": dtype, "label": f"sq{n}", "m": n, "n": n, "k": n,
                         "flops": 2.0 * n**3, "bytes": 3.0 * n * n * size})
    for m, n, k in [(802816, 64, 576), (100352, 256, 2304), (64, 4096, 25088), (4096, 25088, 64)]:
        recs.append({"op": "gemm", "dtype": "fp32", "label": "conv", "m": m, "n": n, "k": k,
                     "flops": 2.0 * m * n * k, "bytes": 4.0 * (m * k + k * n + m * n)})
    for p in range(10, 29, 2):
        recs.append({"op": "relu", "dtype": "fp32", "label": f"relu{p}", "elements": 2**p,
                     "flops": 2.0**p, "bytes": 8.0 * 2**p})
    for p in range(12, 31, 3):
        for pinned in (True, False):
            recs.append({"op": "copy_h2d", "dtype": "fp32", "label": f"h2d{p}", "pinned": pinned,
                         "bytes_moved": 2.0**p, "flops": 0.0, "bytes": 2.0**p})
    recs.append({"op": "launch", "dtype": "fp32", "label": "cupy_ufunc.host", "flops": 0.0,
                 "bytes": 0.0, "median_s": 5e-6})
    for i, rec in enumerate(recs):
        rec.update(backend="cupy", threads=None, file="synthetic.json")
        ops = record_ops(rec)
        if ops:
            model_s = sum(device.op_cost(o).duration_s for o in ops)
            rec["median_s"] = model_s * (1 + noise * math.sin(i))
    return recs


def test_fit_finds_the_minimum_of_a_known_function():
    best = fit({"a": (0.01, 100.0), "b": (1e-6, 1.0)},
               lambda p: (math.log(p["a"]) - math.log(3.0)) ** 2 + (math.log(p["b"] / 1e-3)) ** 2)
    assert best["a"] == pytest.approx(3.0, rel=1e-3)
    assert best["b"] == pytest.approx(1e-3, rel=1e-3)


def test_calibration_recovers_a_known_profile():
    records = synthetic_records(TRUE)
    fitted = calibrate_profile(records, "h100-sxm")
    assert fitted.gemm_tile == TRUE.gemm_tile
    assert fitted.gemm_efficiency["fp32"] == pytest.approx(0.7, rel=0.05)
    assert fitted.memory_efficiency == pytest.approx(0.85, rel=0.05)
    assert fitted.launch_s == pytest.approx(5e-6)
    rows = compare(records, build_device(load_spec("h100-sxm"), fitted))
    assert summarise(rows)["all"]["median_abs_error"] < 0.03


def test_validation_reports_error_per_op_kind():
    records = synthetic_records(TRUE, noise=0.0)
    rows = compare(records, build_device(load_spec("h100-sxm"), TRUE))
    summary = summarise(rows)
    assert {"gemm", "relu", "copy_h2d", "launch", "all"} <= set(summary)
    assert summary["all"]["worst"] < 1e-9
    wrong = TRUE.model_copy(update={"memory_efficiency": 0.425})
    relu = summarise(compare(records, build_device(load_spec("h100-sxm"), wrong)))["relu"]
    assert relu["worst"] > 0.5  # half the bandwidth shows up as up to 2x slower relus


def test_bad_measurement_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_measurements([tmp_path / "nope.json"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_measurements([bad])
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema": "other", "records": []}))
    with pytest.raises(UserError, match="schema"):
        load_measurements([wrong])


def test_a_pooling_kernel_record_counts_the_work_items_the_layer_kinds_do():
    """Output elements forward, input elements backward: a per-output cost (`item_flops`)
    charged per byte / 4 put the H100's VGG16 pools 3-4x too slow (regression)."""
    from workloads.layers import maxpool2d

    rec = {"op": "maxpool2d", "dtype": "fp32", "label": "pool1", "batch": 16, "channels": 64,
           "height": 224, "width": 224, "kernel": 2, "stride": 2, "flops": 51380224.0,
           "bytes": 359661568.0}
    cost = maxpool2d([(64, 224, 224)], {"kernel": 2}, 16)
    assert cost.fwd is not None and cost.bwd_data is not None
    forward = record_op(rec)
    backward = record_op({**rec, "op": "maxpool2d_bwd", "flops": 16 * 64 * 224 * 224})
    assert forward is not None and backward is not None
    assert forward.work_items == cost.fwd.work_items == 16 * 64 * 112 * 112
    assert backward.work_items == cost.bwd_data.work_items == 16 * 64 * 224 * 224
