"""Labels that overlap nothing: each text is tried at a list of places around its anchor, in
order of preference, and goes to the first where its box (padded by `PAD_PT`) stays inside
the axes and meets no box placed before it (other labels, or boxes the caller names, such
as a note). Placing happens after the figure's layout, so the boxes are those the saved
figure has; the texts stay out of the layout (`set_in_layout(False)`), so placing them
moves nothing else. Deterministic: the same figure gives the same places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from matplotlib.axes import Axes
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

PAD_PT = 1.5  # space kept around every label, in points
Place = tuple[float, float, str, str]  # dx, dy (points from the anchor), ha, va
Option = tuple[tuple[float, float], Place]  # an anchor (data coordinates) and a place by it


def around(radii_pt: tuple[float, ...] = (9.0, 16.0, 26.0, 38.0, 54.0, 72.0)) -> list[Place]:
    """Places around a point, nearest first: the four diagonals, then beside, above, below."""
    places = []
    for radius in radii_pt:
        for degrees in (45, -45, 135, -135, 0, 180, 90, -90):
            dx = radius * math.cos(math.radians(degrees))
            dy = radius * math.sin(math.radians(degrees))
            ha = "left" if dx > 1e-9 else "right" if dx < -1e-9 else "center"
            va = "bottom" if dy > 1e-9 else "top" if dy < -1e-9 else "center"
            places.append((round(dx, 3), round(dy, 3), ha, va))
    return places


def overlaps(a: Bbox, b: Bbox) -> bool:
    """Whether two boxes share area (touching edges do not count)."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@dataclass
class Placer:
    """The labels of one axes, placed one after the other (see the module docstring)."""

    ax: Axes
    renderer: Any
    taken: list[Bbox] = field(default_factory=list)

    def box(self, text: Annotation) -> Bbox:
        """The text's own box (not its connector line), padded."""
        text.update_positions(self.renderer)
        return Text.get_window_extent(text, self.renderer).padded(
            PAD_PT * self.ax.figure.dpi / 72)

    def place(self, label: str, options: list[Option], required: bool = False,
              **style: Any) -> Annotation | None:
        """Put `label` at the first free (anchor, place) of `options`; None if none is free
        (unless `required`: then at the first, overlapping if it must)."""
        inside = self.ax.get_window_extent(self.renderer)
        for anchor, place in options:
            text = self._annotate(label, anchor, place, style)
            box = self.box(text)
            if _within(box, inside) and not any(overlaps(box, t) for t in self.taken):
                self.taken.append(box)
                return text
            text.remove()
        if not required or not options:
            return None
        text = self._annotate(label, options[0][0], options[0][1], style)
        self.taken.append(self.box(text))
        return text

    def _annotate(self, label: str, anchor: tuple[float, float], place: Place,
                  style: dict[str, Any]) -> Annotation:
        dx, dy, ha, va = place
        text = self.ax.annotate(label, anchor, xytext=(dx, dy), textcoords="offset points",
                                ha=ha, va=va, **style)
        text.set_in_layout(False)
        return text


def _within(box: Bbox, frame: Bbox) -> bool:
    return (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
            and box.y1 <= frame.y1)
