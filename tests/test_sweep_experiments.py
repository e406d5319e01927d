"""The sweep files of experiments/ and the examples of docs/sweeps.md: every point validates
(default run); every file runs and answers its question (slow)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from simulator.__main__ import main
from simulator.api.sweep import sweep_tasks
from simulator.config.sweep import is_sweep_file, load_sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = [p for p in sorted((ROOT / "experiments").glob("*.yaml")) if is_sweep_file(p)]


def test_the_issue_s_experiments_are_here():
    assert {p.stem for p in SWEEPS} >= {"cluster_sizing_resnet50", "do_i_need_a_gpu"}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_point_of_every_sweep_file_validates(path):
    config, source = load_sweep(path)
    tasks, invalid = sweep_tasks(config, source, path.parent)
    assert not invalid, invalid[0]["error"]
    assert len(tasks) == config.sweep.size
    assert len({t.key for t in tasks}) == len(tasks)  # no two points simulate the same


def test_the_docs_examples_load(tmp_path):
    text = (ROOT / "docs" / "sweeps.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert blocks
    for block in blocks:
        path = tmp_path / "doc.yaml"
        path.write_text(block)
        config, source = load_sweep(path)
        assert not sweep_tasks(config, source, tmp_path)[1]


@pytest.mark.slow
def test_cluster_sizing_answers_within_the_deadline(tmp_path):
    out = tmp_path / "out"
    path = ROOT / "experiments" / "cluster_sizing_resnet50.yaml"
    assert main(["sweep", str(path), "--out", str(out), "--quick", "--workers", "2"]) == 0
    doc = json.loads((out / "results.json").read_text())
    rows, best = doc["points"], doc["summary"]["best"]
    assert doc["summary"]["failed"] == 0
    late = [r for r in rows if r["status"] == "ok" and r["time_to_train_s"] > 86400]
    assert late, "the deadline should rule some small clusters out"
    for objective in ("cloud_cost_usd", "hardware_cost_usd", "energy_j"):
        winner = next(r for r in rows if r["index"] == best[objective]["index"])
        assert winner["feasible"] and winner["time_to_train_s"] <= 86400
        assert all(winner[objective] <= r[objective] for r in rows
                   if r["feasible"] and r[objective] is not None)
    assert doc["summary"]["pareto"] and doc["summary"]["scaling"]


@pytest.mark.slow
def test_do_i_need_a_gpu_draws_its_figure(tmp_path):
    out = tmp_path / "out"
    path = ROOT / "experiments" / "do_i_need_a_gpu.yaml"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2"]) == 0
    assert (out / "sweep.png").stat().st_size > 10_000
    doc = json.loads((out / "results.json").read_text())
    assert doc["summary"]["failed"] == 0 and doc["summary"]["ok"] >= 60
