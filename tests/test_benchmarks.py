"""The benchmark scripts still call the package as it is (regression: benchmarks/scale.py
imported `predict_cluster` after the one prediction path removed it)."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_scale_benchmark_predicts_one_step():
    script = runpy.run_path(str(ROOT / "benchmarks" / "scale.py"))
    result = script["one_step"](8)
    assert result["devices"] == 8 and result["step_time_s"] > 0
