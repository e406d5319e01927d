"""Failure rates of device kinds, from `catalog/failures.yaml`.

`device_failure_rate("h100-sxm")` is the catalog's `FailureRate` for that device (its mean
time between job-interrupting failures per device, how it was derived, the sources and the
assumptions), or None where the catalog has no rate; `failure_rate_names()` lists the
devices that have one. The checkpoint model that uses them is `simulator.results.faults`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hardware_models.catalog_io import read_yaml, validation_message
from simulator.core.errors import UserError

WHERE = "hardware_models/catalog/failures.yaml"


class FailureRate(BaseModel):
    """One device kind's mean time between failures that interrupt a job, with its basis."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    device_mtbf_hours: float = Field(gt=0)
    basis: str = Field(min_length=1)
    sources: list[str] = Field(min_length=1)
    assumptions: list[str] = Field(default_factory=list)


class _Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: dict[str, FailureRate]


@cache
def failure_rates() -> dict[str, FailureRate]:
    """Every rate of the catalog file, by device name; a bad file is one UserError line."""
    text = (resources.files("hardware_models") / "catalog" / "failures.yaml").read_text()
    try:
        return _Catalog.model_validate(read_yaml(text, WHERE)).devices
    except ValidationError as err:
        raise UserError(validation_message(err, WHERE)) from None


def failure_rate_names() -> list[str]:
    return sorted(failure_rates())


def device_failure_rate(name: str) -> FailureRate | None:
    return failure_rates().get(name)
