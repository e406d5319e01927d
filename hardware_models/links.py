"""Links: a bandwidth per direction and a latency (PCIe, NVLink, InfiniBand, Ethernet).

`Link.transfer_s` is the alpha-beta time of one message alone on the link; sharing a
link between concurrent transfers is the engine's job. What a collective library pays per hop
is its own model (`simulator.parallel.nccl`), by the link's `transport` class.

A link is a catalog name (`nvlink4`: the spec, with the catalog's fitted profile where it has
one) or a YAML file (`hardware_models.link_files`): a link spec or a `LinkProfile` written by
`calibrate-link`.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, ValidationError

from hardware_models.base import OpCost
from hardware_models.profile import Profile
from hardware_models.spec import LinkSpec
from simulator.core.errors import UserError

# a link's class of hop from its name, where its spec does not say (test and plugin links)
NAME_PREFIXES = (("nvlink", "nvlink"), ("pci", "pci"), ("ib-", "net"), ("eth", "net"),
                 ("roce", "net"))


class Link:
    """A link as the engine sees it: the spec's line rate times a calibrated efficiency
    (what a collective library achieves on it), and the calibrated latency if any."""

    def __init__(self, spec: LinkSpec, efficiency: float = 1.0, latency_s: float | None = None,
                 origin: str = "spec-sheet") -> None:
        self.spec, self.efficiency, self.origin = spec, efficiency, origin
        self.name = spec.name
        self.bandwidth_bytes_per_s = spec.bandwidth_bytes_per_s * efficiency
        self.latency_s = spec.latency_s if latency_s is None else latency_s

    @property
    def transport(self) -> str | None:
        """'nvlink', 'pci' or 'net' (NCCL's classes of hop); None when neither the spec nor
        the name says (the route decides: pci inside a node, net between nodes)."""
        declared = getattr(self.spec, "transport", None)
        if declared is not None:
            return str(declared)
        name = self.name.lower()
        return next((klass for prefix, klass in NAME_PREFIXES if name.startswith(prefix)), None)

    def transfer_s(self, size_bytes: float) -> float:
        return self.latency_s + size_bytes / self.bandwidth_bytes_per_s

    def copy_cost(self, size_bytes: float, profile: Profile, pinned: bool = False) -> OpCost:
        """A host<->device copy: pageable unless pinned (PyTorch's default `.to(device)`)."""
        eff = profile.copy_efficiency.get("pinned" if pinned else "pageable", 1.0)
        wire_s = size_bytes / (self.bandwidth_bytes_per_s * eff)
        return OpCost(0.0, wire_s, self.latency_s + profile.copy_overhead_s)


class LinkProfile(BaseModel):
    """What `calibrate-link` fits: the fraction of the line rate a collective library reaches
    on the link (Simple protocol, large messages). `latency_s` is the spec's, kept for the
    link's own transfers: a collective's latencies are the library's model. The harness's own
    synchronisation, fitted beside the bandwidth, is recorded and not used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link: str = Field(description="the catalog link the profile calibrates")
    efficiency: PositiveFloat = Field(le=1.0, description="achieved bandwidth / line rate")
    latency_s: PositiveFloat
    model: str = "nccl"
    harness_offset_s: NonNegativeFloat = 0.0
    fit_error: dict[str, float] = Field(default_factory=dict)
    fitted_on: str = ""
    fitted_from: list[str] = Field(default_factory=list)


def parse_link_profile(data: Any, where: str) -> LinkProfile:
    try:
        return LinkProfile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{where}: {field}: {first['msg']}") from None


def calibrated_link(spec: LinkSpec, profile: LinkProfile, origin: str = "calibrated") -> Link:
    return Link(spec, profile.efficiency, profile.latency_s, origin)


def degraded(link: Any, fraction: float) -> Any:
    """`link` carrying `fraction` of its bandwidth (a cable that trained down, a lane lost);
    its latency and class of hop unchanged."""
    worse = copy.copy(link)
    worse.bandwidth_bytes_per_s = link.bandwidth_bytes_per_s * fraction
    return worse
