"""What hardware costs to buy, rent and power, from `catalog/costs.yaml`.

`server_for("h100-sxm")` is the catalog's server for a device (the chassis, CPUs, memory and
NICs around it, with its price and the power of everything but the devices), or None;
`network_for("ib-ndr")` the price of one inter-node link (cable and switch ports);
`cloud_offers("a100-sxm4")` the public on-demand prices per instance-hour; `energy_model()`
the constants of the power model. Each entry carries its sources and assumptions. The
formulas that use them are in `simulator.results.costs` (docs/costs.md).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from hardware_models.catalog_io import read_yaml, validation_message
from simulator.core.errors import UserError

WHERE = "hardware_models/catalog/costs.yaml"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Sourced(_Entry):
    sources: list[str] = Field(min_length=1)
    assumptions: list[str] = Field(default_factory=list)


class Server(_Sourced):
    """One node: the server around `devices_per_server` devices of the kinds it takes.
    `price_usd` is the server without its devices; `system_price_usd` a whole system's
    (devices included) where only that is published. Power is the host part's."""

    display_name: str
    for_devices: list[str] = Field(default_factory=list, description="catalog devices it "
                                   "holds (an experiment's own server names none)")
    devices_per_server: PositiveInt
    price_usd: PositiveFloat | None = None
    system_price_usd: PositiveFloat | None = None
    host_peak_w: PositiveFloat
    host_idle_w: PositiveFloat | None = None
    nics: PositiveInt = Field(1, description="inter-node NICs of one server")
    network_usd_per_nic: PositiveFloat | None = Field(
        None, description="all of one NIC's share of the network (NIC, cable, switch ports), "
        "instead of the link's catalog parts")


class NetworkCost(_Sourced):
    """One inter-node NIC's share of the network: its cable and the switch ports it takes."""

    switch_port_usd: PositiveFloat
    cable_usd: PositiveFloat
    switch_radix: PositiveInt


class CloudOffer(_Entry):
    provider: str
    instance: str
    gpus: PositiveInt
    usd_per_hour: PositiveFloat
    date: str
    source: str


class EnergyModel(_Sourced):
    idle_fraction_of_tdp: float = Field(ge=0, lt=1)
    pue: float = Field(ge=1)


class _Catalog(_Entry):
    collected: str
    energy: EnergyModel
    servers: dict[str, Server]
    network: dict[str, NetworkCost]
    cloud: dict[str, list[CloudOffer]]


@cache
def cost_catalog() -> _Catalog:
    """The whole file, validated; a bad file is one UserError line."""
    text = (resources.files("hardware_models") / "catalog" / "costs.yaml").read_text()
    try:
        return _Catalog.model_validate(read_yaml(text, WHERE))
    except ValidationError as err:
        raise UserError(validation_message(err, WHERE)) from None


def server_for(device: str) -> tuple[str, Server] | None:
    """(name, server) of the catalog's server for a catalog device, if it has one."""
    return next(((name, s) for name, s in sorted(cost_catalog().servers.items())
                 if device in s.for_devices), None)


def server_named(name: str) -> Server | None:
    return cost_catalog().servers.get(name)


def server_names() -> list[str]:
    return sorted(cost_catalog().servers)


def network_for(link: str) -> NetworkCost | None:
    return cost_catalog().network.get(link)


def cloud_offers(device: str) -> list[CloudOffer]:
    return list(cost_catalog().cloud.get(device, []))


def energy_model() -> EnergyModel:
    return cost_catalog().energy
