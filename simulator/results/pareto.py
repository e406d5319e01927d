"""Choosing among sweep points: constraints, Pareto fronts, the best point per objective.

Rows are results rows (or any mappings with the named fields). A row is `feasible` when it
ran (status ok: a point out of memory has no time, so it never is) and meets every
constraint given; a missing number never meets a constraint on it. `pareto_front(rows, x,
y)` keeps the rows no other row dominates (no worse in both, better in one; both minimised),
sorted by x; `best(rows, objective, constraints)` is the feasible row with the least (or
greatest, for a maximised objective) value, ties broken by the shorter time, then the lower
index."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from simulator.config.sweep import OBJECTIVES, Constraints

# constraint field -> the row field it bounds from above
BOUNDS = {"deadline_s": "time_to_train_s", "budget_usd": "hardware_cost_usd",
          "cloud_budget_usd": "cloud_cost_usd", "power_cap_w": "power_peak_w"}


def _number(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def violations(row: dict[str, Any], constraints: Constraints) -> list[str]:
    """The constraints a row breaks, in words (empty: feasible)."""
    if row.get("status") != "ok":
        return ["out of memory" if row.get("status") == "out_of_memory" else "failed"]
    broken = []
    for name, field in BOUNDS.items():
        limit = getattr(constraints, name)
        value = _number(row, field)
        if limit is not None and (value is None or value > limit):
            broken.append(f"{field} {'unknown' if value is None else f'{value:.4g}'} > {limit:g}")
    return broken


def feasible(row: dict[str, Any], constraints: Constraints) -> bool:
    return not violations(row, constraints)


def pareto_front(rows: Sequence[dict[str, Any]], x: str, y: str) -> list[dict[str, Any]]:
    """Rows with both numbers that no other such row dominates, by increasing x (then y)."""
    points: list[tuple[float, float, int, dict[str, Any]]] = sorted(
        ((px, py, i, r) for i, r in enumerate(rows)
         if (px := _number(r, x)) is not None and (py := _number(r, y)) is not None),
        key=lambda p: (p[0], p[1], p[2]))
    front: list[dict[str, Any]] = []
    best_y = float("inf")
    for _, py, _, row in points:
        if py < best_y:  # sorted by x: a row is kept when it beats every row left of it on y
            front.append(row)
            best_y = py
    return front


def best(rows: Sequence[dict[str, Any]], objective: str,
         constraints: Constraints) -> dict[str, Any] | None:
    """The feasible row with the best value of `objective` (None if no row qualifies); of
    rows with the same value, the quickest (time to train, else step time), then the first."""
    sign = -1.0 if OBJECTIVES[objective] == "max" else 1.0
    time = "time_to_train_s" if any(_number(r, "time_to_train_s") for r in rows) \
        else "step_time_s"
    scored = [(sign * value, _number(row, time) or math.inf, i, row)
              for i, row in enumerate(rows)
              if feasible(row, constraints) and (value := _number(row, objective)) is not None]
    return min(scored, key=lambda s: s[:3])[3] if scored else None
