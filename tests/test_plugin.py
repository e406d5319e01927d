"""A real plugin package from outside the repository, seen by `python -m simulator`.

`tests/plugin_pkg` is an installable package (`simdemo`) declaring, as entry points, a device
kind (`npu`, its own cost model), a parallel strategy (`replicas`) and a layer kind
(`swish`). Instead of `pip install` (slow, and it changes the environment), each test puts
the package on PYTHONPATH beside a `simdemo-0.1.0.dist-info` folder holding its METADATA and
entry_points.txt, which is all importlib.metadata reads of an installed package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

PLUGIN = Path(__file__).resolve().parent / "plugin_pkg"
DEVICE, MODEL = PLUGIN / "npu-demo.yaml", PLUGIN / "swish_mlp.yaml"


def install(site: Path, name: str, package: Path, entry_points: dict[str, dict[str, str]]) -> None:
    """What `pip install` leaves behind, as far as importlib.metadata looks: the package
    and a dist-info folder with METADATA and entry_points.txt."""
    shutil.copytree(package, site / package.name)
    info = site / f"{name}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in entry_points.items()))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that holds the `simdemo` plugin as if installed, entry points as declared."""
    root = tmp_path_factory.mktemp("site")
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    install(root, project["name"], PLUGIN / "simdemo", project["entry-points"])
    return root


def simulator(site: Path, *args: str, extra: Path | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m simulator ARGS` in a fresh interpreter that sees the plugin(s)."""
    path = os.pathsep.join(str(p) for p in (site, extra, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-m", "simulator", *args], check=False,
                          capture_output=True, text=True, cwd=cwd or site, env=env, timeout=300)


def predict(site: Path, *args: str) -> dict[str, Any]:
    out = simulator(site, "predict", "--model", str(MODEL), "--hardware", str(DEVICE),
                    "--batch", "64", "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_plugin_device_kind_costs_a_plugin_layer_kind(site):
    result = predict(site, "--mode", "infer", "--per-layer")
    assert result["status"] == "ok" and result["hardware"] == "npu-demo"
    assert result["calibration"] == "spec-sheet" and result["cores"] == 4
    act = next(r for r in result["layers"] if r["layer"] == "act1" and r["phase"] == "fwd")
    n = 64 * 1024  # swish: 4 flops per element on the vector units, reads and writes fp32
    roofline = max(4 * n / (50e12 * 0.25), 2 * n * 4 / 1e12)  # npu-demo.yaml's numbers
    assert act["time_s"] == pytest.approx(roofline)


def test_a_plugin_strategy_from_the_command_line(site):
    one = predict(site, "--mode", "train")
    two = predict(site, "--mode", "train", "--devices", "2", "--parallel", "replicas")
    assert two["parallel"] == "replicas" and two["devices"] == 2
    assert two["communication_s"] == 0.0 and two["scaling_efficiency"] == pytest.approx(1.0)
    assert two["samples_per_s"] == pytest.approx(2 * one["samples_per_s"])


def _experiment(folder: Path, strategy: str) -> Path:
    path = folder / f"plugins-{strategy}.yaml"
    path.write_text(
        "title: Plugins from outside the repository\n"
        "scenarios:\n"
        "  - name: two demo NPUs\n"
        f"    workload: {{model: {MODEL}, batch: 32, mode: train}}\n"
        f"    hardware: {{device: {DEVICE}, count: 2}}\n"
        f"    parallel: {{strategy: {strategy}}}\n")
    return path


def test_an_experiment_with_the_plugins(site, tmp_path):
    out = simulator(site, "run", str(_experiment(tmp_path, "replicas")), "--quick", "--out",
                    str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    row = json.loads((tmp_path / "out" / "results.json").read_text())["scenarios"][0]
    assert row["status"] == "ok" and row["hardware"] == "npu-demo" and row["devices"] == 2
    assert row["model"] == "swish_mlp" and row["strategy"] == "replicas"
    assert row["scaling_efficiency"] == pytest.approx(1.0)


def test_an_unknown_strategy_in_yaml_lists_the_plugin_one(site, tmp_path):
    out = simulator(site, "run", str(_experiment(tmp_path, "replica")), "--quick", "--out",
                    str(tmp_path / "out"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "parallel.strategy" in out.stderr and "unknown strategy 'replica'" in out.stderr
    assert "replicas" in out.stderr and "pipeline" in out.stderr


def test_a_second_plugin_taking_an_existing_name_is_one_line_exit_2(site, tmp_path):
    clash = tmp_path / "clash"
    (tmp_path / "simclash").mkdir()
    (tmp_path / "simclash" / "__init__.py").write_text(
        '"""A plugin that takes the built-in name `data`."""\n\n'
        "def data(job):\n    raise AssertionError('never runs')\n")
    install(clash, "simclash", tmp_path / "simclash",
            {"simulator.strategy": {"data": "simclash:data"}})
    out = simulator(site, "predict", "--model", "mlp", "--hardware", "h200", "--devices", "2",
                    "--parallel", "data", "--json", extra=clash)
    assert out.returncode == 2, out.stdout
    assert out.stderr == ("error: strategy 'data' is provided twice: by "
                          "simulator.parallel.data:data_parallel and by simclash:data\n")


def test_the_worked_example_in_the_docs_is_this_plugin():
    """docs/plugins.md shows each file of tests/plugin_pkg as `**`PATH`**` and a code block."""
    doc = (PLUGIN.parents[1] / "docs" / "plugins.md").read_text()
    shown = dict(re.findall(r"\*\*`([^`]+)`\*\*\n\n```\w*\n(.*?)```", doc, re.DOTALL))
    files = {p.relative_to(PLUGIN).as_posix() for p in PLUGIN.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"}
    assert set(shown) == files
    for path, text in shown.items():
        assert text == (PLUGIN / path).read_text(), path
