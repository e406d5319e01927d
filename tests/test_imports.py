"""The packages import downward: every import of our own code goes to a stage at or below the
importer's, and no modules import each other in a circle (lazy imports included).

The stages, lowest first, follow the data flow (README, "Layout"; ../shared/DESIGN.md).
"""

from __future__ import annotations

import ast
import pathlib

import networkx as nx

ROOT = pathlib.Path(__file__).resolve().parents[1]
STAGES = [
    "simulator.core", "workloads", "hardware_models", "simulator.config", "simulator.engine",
    "simulator.parallel", "simulator.results", "simulator.api", "simulator.report",
    "simulator.measure", "simulator.calibrate", "simulator.validate", "simulator.cli",
    "simulator",
]
OURS = ("simulator", "workloads", "hardware_models")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stage(module: str) -> int:
    matches = [p for p in STAGES if module == p or module.startswith(p + ".")]
    assert matches, f"{module} belongs to no stage; add its package to STAGES"
    return STAGES.index(max(matches, key=len))


def _imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found.update(n if _is_module(n) else node.module for n in names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] in OURS}


def _is_module(name: str) -> bool:
    base = ROOT / pathlib.Path(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for package in OURS:
        for path in (ROOT / package).rglob("*.py"):
            importer = _module_name(path)
            graph.add_node(importer)
            graph.add_edges_from((importer, imported) for imported in _imports(path))
    return graph


def test_every_module_has_a_stage() -> None:
    for module in _graph().nodes:
        _stage(module)


def test_no_upward_import() -> None:
    upward = [f"{a} -> {b}" for a, b in _graph().edges
              if _stage(b) > _stage(a) and a not in ("simulator", "simulator.__main__")]
    assert not upward, "imports that go up the stages:\n" + "\n".join(sorted(upward))


def test_no_import_circle() -> None:
    graph = _graph()
    graph.remove_nodes_from(["simulator", "simulator.__main__"])
    # a package's __init__ importing its own modules is not a circle of modules
    graph.remove_edges_from([(a, b) for a, b in list(graph.edges)
                             if b == a.rsplit(".", 1)[0] and _is_package(b)])
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles[:10])


def _is_package(name: str) -> bool:
    return (ROOT / pathlib.Path(*name.split(".")) / "__init__.py").exists()
