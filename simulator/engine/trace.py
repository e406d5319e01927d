"""Trace: the spans an engine run produced (op, device, stream, start, end) and why each op
started when it did (`wait_cause`), which is what the time breakdown is built from; plus, for
multi-device plans, what crossed each link channel and when (`links`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Span(NamedTuple):
    name: str
    layer: str
    phase: str
    kind: str
    device: int
    stream: str
    start_s: float
    end_s: float
    launched_s: float
    category: str  # compute, memory, transfer, communication
    overhead_s: float
    wait_cause: str  # launch, stream, or the category of the predecessor it waited for
    flops: float
    bytes: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class Trace:
    device_names: list[str]
    spans: list[Span] = field(default_factory=list)
    replicas: int = 1
    links: list[LinkSpan] = field(default_factory=list)

    @property
    def end_s(self) -> float:
        return max((s.end_s for s in self.spans), default=0.0)

    def on(self, device: int, stream: str | None = None) -> list[Span]:
        picked = [s for s in self.spans
                  if s.device == device and (stream is None or s.stream == stream)]
        return sorted(picked, key=lambda s: (s.start_s, s.end_s))


class LinkSpan(NamedTuple):
    """One flow's stay on one link channel (one direction of one cable), for per-link traces.

    `load` is how many identical flows this one stands for on the channel (symmetry)."""

    channel: str
    task: str
    start_s: float
    end_s: float
    size_bytes: float
    load: float
