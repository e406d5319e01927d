"""A link given by path: the profile `calibrate-link` writes (or a link spec) is used as it is by
`--intra-link FILE.yaml` / `--inter-link FILE.yaml`, without editing the installed package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hardware_models.catalog_io import load_link
from hardware_models.link_files import load_link_file

MEASURED = Path(__file__).resolve().parents[1] / "measurements" / "h200x2-nccl-allreduce.json"


def test_written_profile_is_usable_by_path(cli, tmp_path):
    out = tmp_path / "my-nvlink4.yaml"
    done = cli("calibrate-link", str(MEASURED), "--hardware", "h200", "--link", "nvlink4",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    link = load_link_file(out)
    assert link.name == "nvlink4"
    assert link.efficiency == pytest.approx(load_link("nvlink4").efficiency)
    by_path = cli("predict", "--collective", "allreduce", "--bytes", "268435456", "--hardware",
                  "h200", "--devices", "2", "--intra-link", str(out), "--json")
    by_name = cli("predict", "--collective", "allreduce", "--bytes", "268435456", "--hardware",
                  "h200", "--devices", "2", "--intra-link", "nvlink4", "--json")
    assert by_path.returncode == 0, by_path.stderr
    assert json.loads(by_path.stdout)["time_s"] == pytest.approx(
        json.loads(by_name.stdout)["time_s"], rel=1e-9)
    slower = tmp_path / "slow.yaml"
    slower.write_text(yaml.safe_dump({**yaml.safe_load(out.read_text()), "efficiency": 0.3}))
    slow = cli("predict", "--collective", "allreduce", "--bytes", "268435456", "--hardware",
               "h200", "--devices", "2", "--intra-link", str(slower), "--json")
    assert json.loads(slow.stdout)["time_s"] > 2 * json.loads(by_path.stdout)["time_s"]


def test_bad_link_files_are_user_errors(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"link": "nvlink4", "efficiency": 1.5, "latency_s": 1e-6}))
    out = cli("predict", "--collective", "allreduce", "--bytes", "1024", "--hardware", "h200",
              "--devices", "2", "--intra-link", str(bad))
    assert out.returncode == 2 and "efficiency" in out.stderr
    missing = cli("predict", "--collective", "allreduce", "--bytes", "1024", "--hardware", "h200",
                  "--devices", "2", "--intra-link", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
