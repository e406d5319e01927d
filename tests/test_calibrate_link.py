"""Link calibration from measured NCCL all-reduces (measurements/h200x2-nccl-allreduce.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardware_models.catalog_io import load_link, make_device
from simulator.calibrate.link import fit_link
from simulator.api.cluster import predict_collective

MEASURED = Path(__file__).resolve().parents[1] / "measurements" / "h200x2-nccl-allreduce.json"


def test_fit_reproduces_the_large_all_reduces_it_was_fitted_on():
    records = json.loads(MEASURED.read_text())["records"]
    fitted = fit_link(records, "h200", "nvlink4")
    assert 0.3 < fitted["efficiency"] < 1.0  # below the 450 GB/s line rate, as measured
    link = load_link("nvlink4")
    assert link.origin == "calibrated"
    assert link.bandwidth_bytes_per_s == pytest.approx(450e9 * link.efficiency)
    for rec in records:
        if rec["bytes"] >= 1 << 26:
            result, _ = predict_collective("allreduce", rec["bytes"], make_device("h200"),
                                           devices=2, devices_per_node=2, intra_link="nvlink4",
                                           inter_link=None)
            assert result["time_s"] == pytest.approx(rec["median_s"], rel=0.12)


def test_bad_measurement_file_is_a_user_error(cli, tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"schema": "nope"}))
    out = cli("calibrate-link", str(bad), "--hardware", "h200", "--link", "nvlink4",
              "--out", str(tmp_path / "p.yaml"))
    assert out.returncode == 2 and "schema" in out.stderr
    assert not (tmp_path / "p.yaml").exists()
