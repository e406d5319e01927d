"""Numbers for people, in one place: times (µs ... days), counts, rates (FLOP/s), bandwidths
(B/s) and sizes (B), as figure labels, axis units and console tables write them.

Every function gives three significant digits in the unit that makes the number read
between 1 and 1,000. An axis picks its unit once for all its values (`time_axis_unit`,
`si_axis_unit`), so ticks and bar labels of one figure agree: a time-to-train axis in
hours carries bars labelled in hours, minutes or days, never in seconds.
"""

from __future__ import annotations

import math

TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"))
LONG_UNITS = ((86400.0 * 2, 86400.0, "days"), (7200.0, 3600.0, "h"), (120.0, 60.0, "min"))
SI_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def time_unit(seconds: float) -> tuple[float, str]:
    """(scale in seconds, label) among s, ms, µs so that `seconds / scale` reads >= 1."""
    for scale, label in TIME_UNITS:
        if seconds >= scale:
            return scale, label
    return TIME_UNITS[-1]


def long_time_unit(seconds: float) -> tuple[float, str]:
    """As `time_unit`, with min, h and days above two minutes, two hours, two days."""
    for threshold, scale, label in LONG_UNITS:
        if seconds >= threshold:
            return scale, label
    return time_unit(seconds)


def format_time(seconds: float) -> str:
    """Three significant digits in a readable unit: 1.24 ms, 34.9 s, 5.1 h, 7.60 days."""
    scale, label = long_time_unit(seconds)
    return f"{seconds / scale:.3g} {label}"


def time_axis_unit(values_s: list[float]) -> tuple[float, str]:
    """One unit for an axis of times: the unit of the largest value (s, min, h, days)."""
    return long_time_unit(max(values_s, default=1.0))


HUMAN_TIMES = ((1e-6, "1 µs"), (1e-5, "10 µs"), (1e-4, "100 µs"), (1e-3, "1 ms"),
               (1e-2, "10 ms"), (0.1, "100 ms"), (1.0, "1 s"), (10.0, "10 s"), (60.0, "1 min"),
               (600.0, "10 min"), (3600.0, "1 h"), (36000.0, "10 h"), (86400.0, "1 day"),
               (604800.0, "1 week"), (2592000.0, "30 days"), (31557600.0, "1 year"),
               (315576000.0, "10 years"))


FINER_TIMES = ((2e-6, "2 µs"), (5e-6, "5 µs"), (2e-5, "20 µs"), (5e-5, "50 µs"),
               (2e-4, "200 µs"), (5e-4, "500 µs"), (2e-3, "2 ms"), (5e-3, "5 ms"),
               (0.02, "20 ms"), (0.05, "50 ms"), (0.2, "200 ms"), (0.5, "500 ms"), (2.0, "2 s"),
               (5.0, "5 s"), (20.0, "20 s"), (30.0, "30 s"), (120.0, "2 min"), (300.0, "5 min"),
               (1200.0, "20 min"), (1800.0, "30 min"), (7200.0, "2 h"), (18000.0, "5 h"),
               (43200.0, "12 h"), (172800.0, "2 days"), (432000.0, "5 days"),
               (1209600.0, "14 days"), (7776000.0, "90 days"), (15552000.0, "180 days"),
               (63115200.0, "2 years"), (157788000.0, "5 years"))


def human_time_ticks(lo_s: float, hi_s: float, most: int = 4) -> list[tuple[float, str]]:
    """About `most` ticks for a log axis of seconds, at times people count in (1 ms, 1 min,
    1 h, 1 day; on an axis too short for two of them, also 2 and 5 of a unit, 30 min, 12 h,
    ...), each at least 1/(most + 1) of the axis's decades after the one before (so uneven
    steps such as 10 h -> 1 day never put two labels side by side)."""
    ticks = _spread_ticks(HUMAN_TIMES, lo_s, hi_s, most)
    if len(ticks) < 2:
        ticks = _spread_ticks(tuple(sorted(HUMAN_TIMES + FINER_TIMES)), lo_s, hi_s, most)
    return ticks


def _spread_ticks(candidates: tuple[tuple[float, str], ...], lo_s: float, hi_s: float,
                  most: int) -> list[tuple[float, str]]:
    inside = [(t, label) for t, label in candidates if lo_s <= t <= hi_s]
    if not inside:
        return []
    gap = math.log10(hi_s / lo_s) / (most + 1)
    picked = [inside[0]]
    for t, label in inside[1:]:
        if math.log10(t / picked[-1][0]) >= gap - 1e-9:
            picked.append((t, label))
    return picked


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis of counts from `lo` to `hi`: the powers of ten inside it, or,
    where fewer than two are, 1, 2 and 5 times them."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = [10.0 ** k for k in range(first, last + 1) if lo <= 10.0 ** k <= hi]
    if len(decades) >= 2:
        return decades
    return [m * 10.0 ** k for k in range(first, last + 1) for m in (1, 2, 5)
            if lo <= m * 10.0 ** k <= hi]


def format_count(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def si_unit(value: float, base: str) -> tuple[float, str]:
    """(scale, unit) with an SI prefix: si_unit(3e12, 'FLOP/s') == (1e12, 'TFLOP/s')."""
    for scale, prefix in SI_PREFIXES:
        if abs(value) >= scale:
            return scale, prefix + base
    return 1.0, base


def format_si(value: float, base: str) -> str:
    scale, unit = si_unit(value, base)
    return f"{value / scale:.3g} {unit}"


def format_rate(flops_per_s: float) -> str:
    """312 TFLOP/s."""
    return format_si(flops_per_s, "FLOP/s")


def format_bandwidth(bytes_per_s: float) -> str:
    """3.35 TB/s (decimal prefixes, as spec sheets quote them)."""
    return format_si(bytes_per_s, "B/s")


def format_bytes(size_bytes: float) -> str:
    """25.2 MB."""
    return format_si(size_bytes, "B")


def format_share(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"
