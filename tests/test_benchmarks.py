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


def test_sweep_speed_benchmark_runs_its_points():
    script = runpy.run_path(str(ROOT / "benchmarks" / "sweep_speed.py"))
    import tempfile

    from simulator.api.sweep import sweep_tasks
    from simulator.config.sweep import load_sweep

    with tempfile.TemporaryDirectory() as tmp:
        path = script["sweep_file"](Path(tmp), 5)
        config, source = load_sweep(path)
        tasks, invalid = sweep_tasks(config, source, path.parent)
    assert len(tasks) == 5 and not invalid
    assert script["timed"](tasks, 1, None) > 0
