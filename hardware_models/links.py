"""Links: a bandwidth per direction and a latency (PCIe, NVLink, InfiniBand, Ethernet).

`Link.transfer_s` is the alpha-beta time of one message alone on the link; sharing a
link between concurrent transfers is the engine's job.
"""

from __future__ import annotations

from hardware_models.base import OpCost
from hardware_models.profile import Profile
from hardware_models.spec import LinkSpec


class Link:
    """A link as the engine sees it: the spec's line rate times a calibrated efficiency
    (what a collective library achieves on it), and the calibrated latency if any."""

    def __init__(self, spec: LinkSpec, efficiency: float = 1.0, latency_s: float | None = None,
                 origin: str = "spec-sheet") -> None:
        self.spec, self.efficiency, self.origin = spec, efficiency, origin
        self.name = spec.name
        self.bandwidth_bytes_per_s = spec.bandwidth_bytes_per_s * efficiency
        self.latency_s = spec.latency_s if latency_s is None else latency_s

    def transfer_s(self, size_bytes: float) -> float:
        return self.latency_s + size_bytes / self.bandwidth_bytes_per_s

    def copy_cost(self, size_bytes: float, profile: Profile, pinned: bool = False) -> OpCost:
        """A host<->device copy: pageable unless pinned (PyTorch's default `.to(device)`)."""
        eff = profile.copy_efficiency.get("pinned" if pinned else "pageable", 1.0)
        wire_s = size_bytes / (self.bandwidth_bytes_per_s * eff)
        return OpCost(0.0, wire_s, self.latency_s + profile.copy_overhead_s)
