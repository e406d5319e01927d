"""A small, deterministic least-squares fitter for calibration.

Parameters live in log space within bounds; the loss is the mean squared log error of
predicted over measured times, so a 2x error costs the same on a 10 us kernel as on a 1 s
one. Coordinate descent with golden-section line searches finds the basin, then a Nelder-Mead
simplex polishes correlated parameters (an efficiency and the size at which it halves):
dependency-free and deterministic for the handful of parameters a device profile has.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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


def _nelder_mead(f: Callable[[list[float]], float], x0: list[float], step: float,
                 iters: int) -> list[float]:
    n = len(x0)
    simplex = [list(x0)] + [[x + (step if i == j else 0.0) for j, x in enumerate(x0)]
                            for i in range(n)]
    values = [f(x) for x in simplex]
    for _ in range(iters):
        order = sorted(range(n + 1), key=lambda i: values[i])
        simplex, values = [simplex[i] for i in order], [values[i] for i in order]
        centroid = [sum(x[j] for x in simplex[:-1]) / n for j in range(n)]
        worst = simplex[-1]
        reflect = [c + (c - w) for c, w in zip(centroid, worst, strict=True)]
        fr = f(reflect)
        if fr < values[0]:
            expand = [c + 2 * (c - w) for c, w in zip(centroid, worst, strict=True)]
            fe = f(expand)
            simplex[-1], values[-1] = (expand, fe) if fe < fr else (reflect, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflect, fr
        else:
            contract = [c + 0.5 * (w - c) for c, w in zip(centroid, worst, strict=True)]
            fc = f(contract)
            if fc < values[-1]:
                simplex[-1], values[-1] = contract, fc
            else:  # shrink towards the best point
                simplex = [simplex[0]] + [
                    [b + 0.5 * (x - b) for b, x in zip(simplex[0], p, strict=True)]
                    for p in simplex[1:]]
                values = [values[0]] + [f(x) for x in simplex[1:]]
    return simplex[min(range(n + 1), key=lambda i: values[i])]


def fit(bounds: dict[str, tuple[float, float]], loss: Callable[[dict[str, float]], float],
        sweeps: int = 4, iters: int = 40) -> dict[str, float]:
    """Minimise `loss` over positive parameters within `bounds` (searched in log space)."""
    params = {k: math.sqrt(lo * hi) for k, (lo, hi) in bounds.items()}
    for _ in range(sweeps):
        for name, (lo, hi) in bounds.items():
            def along(x: float, name: str = name) -> float:
                return loss({**params, name: math.exp(x)})

            params[name] = math.exp(_golden(along, math.log(lo), math.log(hi), iters))
    names = list(bounds)
    logs = {k: (math.log(lo), math.log(hi)) for k, (lo, hi) in bounds.items()}

    def clipped(x: list[float]) -> dict[str, float]:
        return {k: math.exp(min(max(v, logs[k][0]), logs[k][1]))
                for k, v in zip(names, x, strict=True)}

    best = _nelder_mead(lambda x: loss(clipped(x)), [math.log(params[k]) for k in names], 0.1,
                        60 * len(names))
    return clipped(best)
