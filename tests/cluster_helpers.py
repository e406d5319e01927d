"""Helpers for the multi-device tests: links with round numbers and small clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardware_models.links import Link
from hardware_models.spec import LinkSpec
from hardware_models.topology import Topology, build_cluster


def link(name: str, bandwidth_bytes_per_s: float, latency_s: float = 1e-6) -> Link:
    return Link(LinkSpec(name=name, display_name=name, bandwidth_bytes_per_s=bandwidth_bytes_per_s,
                         latency_s=latency_s, sources=["test"]))


def cluster(nodes: int, per_node: int, intra_bytes_per_s: float = 100e9,
            inter_bytes_per_s: float = 10e9, latency_s: float = 1e-6) -> Topology:
    """PCIe-style nodes (the NIC on the devices' switch) with round-number links."""
    intra = link("intra", intra_bytes_per_s, latency_s)
    return build_cluster(nodes, per_node, intra, link("inter", inter_bytes_per_s, latency_s), intra)


SCENARIO_HEAD = "title: t\nscenarios:\n  - name: m\n    workload: {model: alexnet, batch: 8}\n"


def refused_run(cli: Any, tmp_path: Path, hardware: str) -> tuple[Path, str]:
    """`run` on a one-scenario file with this `hardware:` block (indented as in the file):
    it must exit 2 writing nothing; returns the file and its one stderr line."""
    path = tmp_path / "x.yaml"
    path.write_text(SCENARIO_HEAD + "    hardware:\n" + hardware)
    proc = cli("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and not (tmp_path / "out").exists()
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    return path, proc.stderr.strip()
