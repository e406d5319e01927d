"""Prediction intervals: the 10-90% band of the true step time around a prediction, from the
held-out residuals of the regimes the step is made of (`hardware_models.host`'s intervals,
written by `calibrate-host --intervals`), mixed by the share of the step the host's launches
take. Where no residuals describe the device (CPUs, other frameworks, the spec sheet) the
band is unknown: None."""

from __future__ import annotations

from typing import Any

from hardware_models.host import catalog_intervals


def step_interval(step_s: float, breakdown: dict[str, float], device: Any,
                  framework: str = "pytorch") -> dict[str, float | None]:
    quantiles = catalog_intervals(framework)
    profile = getattr(device, "profile", None)
    if quantiles is None or getattr(device, "kind", None) != "gpu" or profile is None \
            or profile.origin == "spec-sheet":
        return {"step_time_p10_s": None, "step_time_p90_s": None}
    share = breakdown.get("launch", 0.0) / step_s if step_s > 0 else 0.0
    low, high = band(step_s, quantiles["host-bound"], quantiles["device"], share)
    return {"step_time_p10_s": low, "step_time_p90_s": high}


def band(step_s: float, host_q: dict[str, float], device_q: dict[str, float],
         host_share: float = 1.0) -> tuple[float, float]:
    """The 10-90% interval of the true step for a prediction `step_s`: the residual
    quantiles (predicted / measured - 1) of its regimes, mixed by the host's share."""
    p10 = host_share * host_q["p10"] + (1 - host_share) * device_q["p10"]
    p90 = host_share * host_q["p90"] + (1 - host_share) * device_q["p90"]
    return step_s / (1 + p90), step_s / (1 + p10)
