"""The import rule of simulator.measure, and benchmarks/ as thin scripts.

simulator.measure may import simulator.core, workloads, hardware_models and simulator.report
(and the root `simulator` package), never simulator.cli, validate or calibrate. Every one of
its modules imports with numpy as the only third-party package (CuPy, torch, PyYAML and the
simulator's other dependencies are imported inside functions), so the benchmarks load on GPU
machines that lack them. benchmarks/ holds scripts that import the installed package.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import simulator.measure

ROOT = Path(__file__).resolve().parents[1]
MEASURE = ROOT / "simulator" / "measure"
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))
ALLOWED = ("simulator.core", "simulator.measure", "simulator.report", "workloads",
           "hardware_models")
OURS = ("simulator", "workloads", "hardware_models")


def _our_imports(path: Path) -> set[str]:
    """Every absolute import of our packages in `path`, lazy ones included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] in OURS}


def test_measure_imports_only_the_allowed_stages() -> None:
    bad = []
    for path in sorted(MEASURE.rglob("*.py")):
        for module in _our_imports(path):
            allowed = module == "simulator" or any(
                module == a or module.startswith(a + ".") for a in ALLOWED)
            if not allowed:
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


_BLOCKER = """
import importlib.abc, sys
ALLOWED = {"numpy", "simulator", "workloads", "hardware_models"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in ALLOWED and top not in sys.stdlib_module_names:
            raise ImportError(f"blocked third-party import: {name}")
        return None
sys.meta_path.insert(0, Block())
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print("imported", len(sys.argv) - 1)
"""


def _measure_modules() -> list[str]:
    walk = pkgutil.walk_packages(simulator.measure.__path__, prefix="simulator.measure.")
    return ["simulator.measure"] + sorted(m.name for m in walk)


def test_every_measure_module_imports_with_numpy_alone() -> None:
    modules = _measure_modules()
    assert "simulator.measure.cupy_step.cupy_ops" in modules
    proc = subprocess.run([sys.executable, "-c", _BLOCKER, *modules], check=False,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"imported {len(modules)}" in proc.stdout


def test_benchmarks_do_not_touch_sys_path_and_compile() -> None:
    assert BENCHMARKS
    for path in BENCHMARKS:
        text = path.read_text()
        assert "sys.path" not in text, path.name
        compile(text, str(path), "exec")


@pytest.mark.parametrize("script", ["cupy_vgg16_step.py", "cupy_layer_kernels.py"])
def test_cupy_scripts_start_without_cupy(script: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--help"],
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--out" in proc.stdout
