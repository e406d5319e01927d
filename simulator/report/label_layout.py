"""Labels that overlap nothing: each text is tried at a list of places around its anchor, in
order of preference, and goes to the first where its box (padded by `PAD_PT`) stays inside
the axes and meets no box placed before it (other labels, or boxes the caller names, such
as markers or a note). A label with a connector line (an annotation with `arrowprops`) also
needs its line clear: the line, from the text's box (the point of it nearest the anchor:
the shortest line) to its anchor, crosses no label's
box and no other label's line, and no label is put over a line placed before it. So no
text hides another or the line that ties a label to its point. `spread` adds, after the
near places, places over the whole axes (nearest first) for labels that must be drawn.
Placing happens after the figure's layout, so the boxes are those the saved figure has;
the texts stay out of the layout (`set_in_layout(False)`), so placing them moves nothing
else. Deterministic: the same figure gives the same places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from matplotlib.axes import Axes
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

PAD_PT = 1.5  # space kept around every label, in points
NEAR_PT = 8.0  # leaders may cross this close to the points they go to
SPREAD = (14, 10)  # columns and rows of the places `spread` adds over the axes
Place = tuple[float, float, str, str]  # dx, dy (points from the anchor), ha, va
Option = tuple[tuple[float, float], Place]  # an anchor (data coordinates) and a place by it
Point = tuple[float, float]
Segment = tuple[Point, Point]  # pixels


DIAGONALS_FIRST = (45, -45, 135, -135, 0, 180, 90, -90)
SIXTEEN = DIAGONALS_FIRST + (22.5, -22.5, 157.5, -157.5, 67.5, -67.5, 112.5, -112.5)


def around(radii_pt: tuple[float, ...] = (9.0, 16.0, 26.0, 38.0, 54.0, 72.0),
           angles: tuple[float, ...] = DIAGONALS_FIRST) -> list[Place]:
    """Places around a point, nearest first: the four diagonals, then beside, above, below
    (then, with `SIXTEEN`, the directions between)."""
    places = []
    for radius in radii_pt:
        for degrees in angles:
            dx = radius * math.cos(math.radians(degrees))
            dy = radius * math.sin(math.radians(degrees))
            ha = "left" if dx > 1e-9 else "right" if dx < -1e-9 else "center"
            va = "bottom" if dy > 1e-9 else "top" if dy < -1e-9 else "center"
            places.append((round(dx, 3), round(dy, 3), ha, va))
    return places


def overlaps(a: Bbox, b: Bbox) -> bool:
    """Whether two boxes share area (touching edges do not count)."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _side(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def segments_cross(s: Segment, t: Segment, near_px: float = 0.0) -> bool:
    """Whether two segments cross, further than `near_px` from the second end of either
    (the point a leader goes to: leaders of points close together may meet there; meeting
    at an end or running along each other does not count)."""
    (a, b), (c, d) = s, t
    ab, cd = _side(a, b, c) * _side(a, b, d), _side(c, d, a) * _side(c, d, b)
    if not (ab < 0 and cd < 0):
        return False
    ratio = _side(c, d, a) / (_side(c, d, a) - _side(c, d, b))  # where along s they cross
    x, y = a[0] + ratio * (b[0] - a[0]), a[1] + ratio * (b[1] - a[1])
    return min(math.dist((x, y), b), math.dist((x, y), d)) > near_px


def crosses(segment: Segment, box: Bbox) -> bool:
    """Whether a segment passes through a box's inside (an end inside counts)."""
    (x0, y0), (x1, y1) = segment
    lo, hi = 0.0, 1.0  # Liang-Barsky: clip the segment's parameter to the box
    for p, q in ((x0 - x1, x0 - box.x0), (x1 - x0, box.x1 - x0), (y0 - y1, y0 - box.y0),
                 (y1 - y0, box.y1 - y0)):
        if p == 0:
            if q <= 0:
                return False
            continue
        r = q / p
        if p < 0:
            lo = max(lo, r)
        else:
            hi = min(hi, r)
        if lo >= hi:
            return False
    return True


@dataclass
class Placer:
    """The labels of one axes, placed one after the other (see the module docstring):
    `taken`, boxes no label may cover (markers, a note); `labels`, boxes no label and no
    connector line may cover (texts already there); `leaders`, the lines placed."""

    ax: Axes
    renderer: Any
    taken: list[Bbox] = field(default_factory=list)
    labels: list[Bbox] = field(default_factory=list)
    leaders: list[Segment] = field(default_factory=list)

    def box(self, text: Annotation) -> Bbox:
        """The text's own box (not its connector line), padded."""
        text.update_positions(self.renderer)
        return Text.get_window_extent(text, self.renderer).padded(
            PAD_PT * self.ax.figure.dpi / 72)

    def leader(self, text: Annotation, box: Bbox) -> Segment | None:
        """The connector line of `text` (placed at `box`), pixels, or None if it has none:
        from the point of the box nearest its anchor (`relpos`) to the anchor."""
        if text.arrowprops is None:
            return None
        x, y = (float(v) for v in self.ax.transData.transform(text.xy))
        rx, ry = relpos(box, (x, y))
        return (box.x0 + rx * box.width, box.y0 + ry * box.height), (x, y)

    def free(self, box: Bbox, leader: Segment | None, markers: bool = True) -> bool:
        """Whether a label at `box` with `leader` hides nothing (no marker of `taken`
        either, unless `markers` is False) and is hidden by nothing."""
        if not _within(box, self.ax.get_window_extent(self.renderer)):
            return False
        if (markers and any(overlaps(box, t) for t in self.taken)) or any(
                overlaps(box, t) for t in self.labels):
            return False
        if any(crosses(line, box) for line in self.leaders):
            return False
        if leader is None:
            return True
        near_px = NEAR_PT * self.ax.figure.dpi / 72
        end = leader[1]  # a text over the point itself is crossed by any leader to it
        return not (any(crosses(leader, t) for t in self.labels
                        if not t.contains(*end)) or any(
            segments_cross(leader, line, near_px) for line in self.leaders))

    def place(self, label: str, options: list[Option], required: bool = False,
              over_markers: bool = False, **style: Any) -> Annotation | None:
        """Put `label` at the first free (anchor, place) of `options`; None if none is free
        (unless `required`: then at the first where it covers only markers, else at the
        first, overlapping if it must). `over_markers`: only places where it covers
        markers (and nothing else) are looked for."""
        passes = (False,) if over_markers else (True, False) if required else (True,)
        for markers in passes:
            for anchor, place in options:
                text = self._annotate(label, anchor, place, style)
                box = self.box(text)
                leader = self.leader(text, box)
                if self.free(box, leader, markers):
                    return self._take(text, box, leader, style)
                text.remove()
        if not required or not options:
            return None
        text = self._annotate(label, options[0][0], options[0][1], style)
        box = self.box(text)
        return self._take(text, box, self.leader(text, box), style)

    def undo(self, text: Annotation) -> None:
        """Take back `text`, the label placed last."""
        self.labels.pop()
        if text.arrowprops is not None and self.leaders:
            self.leaders.pop()
        text.remove()

    def spread(self, anchor: tuple[float, float]) -> list[Option]:
        """Places for a label of `anchor` all over the axes, nearest first (`SPREAD`)."""
        frame = self.ax.get_window_extent(self.renderer)
        x, y = self.ax.transData.transform(anchor)
        to_pt = 72 / self.ax.figure.dpi
        columns, rows = SPREAD
        spots = [(frame.x0 + frame.width * (i + 0.5) / columns,
                  frame.y0 + frame.height * (j + 0.5) / rows)
                 for i in range(columns) for j in range(rows)]
        spots.sort(key=lambda p: ((p[0] - x) ** 2 + (p[1] - y) ** 2, p))
        return [(anchor, (round((px - x) * to_pt, 3), round((py - y) * to_pt, 3), "center",
                          "center")) for px, py in spots]

    def _take(self, text: Annotation, box: Bbox, leader: Segment | None,
              style: dict[str, Any]) -> Annotation:
        """Keep `text` at `box`; one with a leader is drawn anew, its line starting where
        `leader` does (matplotlib's default starts it at the text's centre)."""
        self.labels.append(box)
        if leader is None:
            return text
        self.leaders.append(leader)
        anchor, place = text.xy, (*text.xyann, text.get_horizontalalignment(),
                                  text.get_verticalalignment())
        text.remove()
        arrow = {**style["arrowprops"], "relpos": relpos(box, leader[1])}
        return self._annotate(text.get_text(), anchor, place, {**style, "arrowprops": arrow})

    def _annotate(self, label: str, anchor: tuple[float, float], place: Place,
                  style: dict[str, Any]) -> Annotation:
        dx, dy, ha, va = place
        text = self.ax.annotate(label, anchor, xytext=(dx, dy), textcoords="offset points",
                                ha=ha, va=va, **style)
        text.set_in_layout(False)
        return text


def relpos(box: Bbox, point: Point) -> tuple[float, float]:
    """The point of `box` nearest `point`, as fractions of the box's width and height."""
    return (min(1.0, max(0.0, (point[0] - box.x0) / box.width)) if box.width else 0.5,
            min(1.0, max(0.0, (point[1] - box.y0) / box.height)) if box.height else 0.5)


def _within(box: Bbox, frame: Bbox) -> bool:
    return (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
            and box.y1 <= frame.y1)
