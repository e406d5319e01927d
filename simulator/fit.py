"""A small, deterministic least-squares fitter for calibration.

Parameters live in log space within bounds; the loss is the mean squared log error of
predicted over measured times, so a 2x error costs the same on a 10 us kernel as on a 1 s
one. Coordinate descent with golden-section line searches: slow for big problems, exact
and dependency-free for the handful of parameters a device profile has.
"""

from __future__ import annotations

import math
from typing import Callable

GOLDEN = (math.sqrt(5) - 1) / 2


def log_error(predicted_s: float, measured_s: float) -> float:
    return math.log(max(predicted_s, 1e-30) / measured_s)


def msle(pairs: list[tuple[float, float]]) -> float:
    """Mean squared log error of (predicted, measured) pairs."""
    return sum(log_error(p, m) ** 2 for p, m in pairs) / max(1, len(pairs))


def _golden(f: Callable[[float], float], lo: float, hi: float, iters: int) -> float:
    a, b = lo, hi
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = f(d)
    return (a + b) / 2


def fit(bounds: dict[str, tuple[float, float]], loss: Callable[[dict[str, float]], float],
        sweeps: int = 4, iters: int = 40) -> dict[str, float]:
    """Minimise `loss` over positive parameters within `bounds` (searched in log space)."""
    params = {k: math.sqrt(lo * hi) for k, (lo, hi) in bounds.items()}
    for _ in range(sweeps):
        for name, (lo, hi) in bounds.items():
            def along(x: float, name: str = name) -> float:
                return loss({**params, name: math.exp(x)})

            params[name] = math.exp(_golden(along, math.log(lo), math.log(hi), iters))
    return params
