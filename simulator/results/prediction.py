"""`Prediction`: the result dict of one step plus the objects behind it (graph, trace,
device), what `simulator.api` returns and `simulator.report` writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.engine.trace import Trace
from workloads.ops import OpGraph


@dataclass
class Prediction:
    """The JSON-ready result plus the objects behind it (for reports and traces)."""

    result: dict[str, Any]
    graph: OpGraph
    trace: Trace | None
    device: Any
