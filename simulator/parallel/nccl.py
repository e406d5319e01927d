"""NCCL's cost model as data (hardware_models/catalog/collectives/nccl.yaml, read in NCCL's
src/graph/tuning.cc): a base latency per algorithm and protocol, paid once per collective; a
hardware latency per hop by the class of link the hop crosses (NVLink, PCIe, network), paid per
step of a ring and per level of a tree; the share of the link's bandwidth each protocol gets.

Protocols: `LL` (8-byte words of 4 data bytes and a 4-byte flag: the lowest latency, half the
bandwidth), `LL128` (128-byte lines of 120 data bytes), `Simple` (bulk copies behind a flag per
chunk: the full bandwidth, the highest latency). The simulator moves a collective's bytes over the
topology's links in the engine; this module says what each hop and each byte costs there.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, PositiveFloat

from simulator.core.errors import UserError

PROTOCOLS = ("LL", "LL128", "Simple")
ALGORITHMS = ("ring", "tree")
CLASSES = ("nvlink", "pci", "net")
US = 1e-6

Protocol = Literal["LL", "LL128", "Simple"]
PerProtocol = dict[Protocol, PositiveFloat]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PerAlgorithm(_Strict):
    ring: PerProtocol
    tree: PerProtocol


class Factors(PerAlgorithm):
    tree_one_node: PerProtocol


class HopLatencies(_Strict):
    nvlink: PerAlgorithm
    pci: PerAlgorithm
    net: PerAlgorithm


class TuningModel(_Strict):
    """The constants of one collective library's tuning model (microseconds as in its source)."""

    library: str
    base_latency_us: PerAlgorithm
    hop_latency_us: HopLatencies
    reference_route_latency_us: dict[Literal["nvlink", "pci", "net"], float]
    bandwidth_factor: Factors
    sources: list[str]
    assumptions: list[str] = []

    def base_s(self, algorithm: str, protocol: str) -> float:
        return float(getattr(self.base_latency_us, algorithm)[protocol]) * US

    def hop_s(self, klass: str, algorithm: str, protocol: str, route_latency_s: float) -> float:
        """One hop of `algorithm` over a route of class `klass`; a route slower than the one
        NCCL's constants were taken on pays the difference."""
        own = float(getattr(getattr(self.hop_latency_us, klass), algorithm)[protocol]) * US
        excess = route_latency_s - self.reference_route_latency_us[klass] * US  # type: ignore[index]
        return own + max(excess, 0.0)

    def factor(self, algorithm: str, protocol: str, one_node: bool) -> float:
        table = "tree_one_node" if algorithm == "tree" and one_node else algorithm
        return float(getattr(self.bandwidth_factor, table)[protocol])


@cache
def nccl() -> TuningModel:
    path = resources.files("hardware_models") / "catalog" / "collectives" / "nccl.yaml"
    return TuningModel.model_validate(yaml.safe_load(path.read_text()))


def check_protocol(value: object) -> str | None:
    """A `protocol` option: LL, LL128 or Simple (any case), or None for the library's choice."""
    if value is None:
        return None
    for name in PROTOCOLS:
        if isinstance(value, str) and value.lower() == name.lower():
            return name
    raise UserError(f"options.protocol: must be one of {', '.join(PROTOCOLS)}, got {value!r}")
