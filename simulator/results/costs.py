"""Cost, power and energy of a scenario, as users pay them (docs/costs.md has the formulas).

- `hardware_cost_usd`: the whole cluster. Each node is a server (`hardware.server`, else
  the catalog's for the device, `hardware_models/catalog/costs.yaml`): its price without
  devices plus its devices at `price_usd`, or a whole system's price; nodes over one server
  of that kind (or devices of a kind without a server) count the devices only, and
  `hardware_cost_basis` says so. Between nodes, every NIC costs its cable and switch
  ports: a fat tree of `levels` switch layers (1 while the NICs fit one switch, 2 while
  they fit radix^2 / 2, else 3) takes `2 levels - 1` ports and `levels` cables per NIC (or
  the server's own `network_usd_per_nic`).
- `cloud_cost_usd`: the cheapest public on-demand offer whose instance holds a node,
  `ceil(devices / gpus per instance) x usd_per_hour x hours`, billed per second.
- Power: each device draws `idle_w + (tdp_w - idle_w) x busy` and each server's host part
  `host_idle_w + (host_peak_w - host_idle_w) x busy`, where `busy` is the share of the step
  the device is not idle or waiting for launches (1 - (idle + launch) / step) and an idle
  power not in the catalog is `idle_fraction_of_tdp x` the peak. `power_w` is the cluster's
  mean draw times the PUE, `power_peak_w` its peak draw times the PUE, `energy_j = power_w x`
  the time to train (or one step without a dataset).
- `samples_per_s_per_usd`: samples per second per dollar of hardware.
"""

from __future__ import annotations

import math
from typing import Any

from hardware_models.costs import (
    cloud_offers,
    energy_model,
    network_for,
    server_for,
    server_named,
)
from simulator.config.schema import Scenario, failure_rate_device

NO_PRICE = "not priced"  # how a basis says that a device (or its server) has no price
UNPRICED_DEVICE = "no published price for"  # in the basis of a device without a price
UNPRICED_NETWORK = "(network not priced)"  # in the basis of nodes over an unpriced link
COST_KEYS = ("hardware_cost_usd", "hardware_cost_basis", "servers", "network_cost_usd",
             "cloud_cost_usd", "cloud_offer", "power_w", "power_peak_w", "pue",
             "samples_per_s_per_usd")


def _levels(nics: int, radix: int) -> int:
    return 1 if nics <= radix else 2 if nics <= radix * radix // 2 else 3


def network_cost(nodes: int, nics_per_node: int, link: str,
                 usd_per_nic: float | None = None) -> float | None:
    """Cables and switch ports of the links between nodes (0 for one node); `usd_per_nic`,
    where a server gives it, is all of one NIC's share instead of the link's parts."""
    if nodes <= 1:
        return 0.0
    if usd_per_nic is not None:
        return nodes * nics_per_node * usd_per_nic
    parts = network_for(link)
    if parts is None:
        return None
    nics = nodes * nics_per_node
    levels = _levels(nics, parts.switch_radix)
    return nics * ((2 * levels - 1) * parts.switch_port_usd + levels * parts.cable_usd)


def _server(scenario: Scenario) -> tuple[str, Any] | None:
    """(name, server) around each node: the scenario's own, else the catalog's for the
    device; None where none holds a node."""
    given = scenario.hardware.server
    named = server_named(given) if isinstance(given, str) else None
    found: tuple[str, Any] | None
    if isinstance(given, str) and named is not None:
        found = (given, named)
    elif given is not None and not isinstance(given, str):
        found = (given.display_name, given)
    else:
        found = server_for(failure_rate_device(scenario.hardware.device))
    if found is None or scenario.hardware.per_node > found[1].devices_per_server:
        return None
    return found


def hardware_cost(scenario: Scenario, device: Any, inter_link: str | None) -> dict[str, Any]:
    """The cluster's purchase cost and what it counts (`inter_link`: the link between nodes
    the prediction used)."""
    hw, price = scenario.hardware, getattr(device, "price_usd", None)
    nodes = hw.count // hw.per_node
    found = _server(scenario)
    if found is None:
        basis = (f"devices only (no catalog server holds {hw.per_node} {device.name})" if price
                 else f"{NO_PRICE}: {UNPRICED_DEVICE} {device.name}")
        return {"hardware_cost_usd": hw.count * price if price else None,
                "hardware_cost_basis": basis, "servers": None, "network_cost_usd": None}
    name, server = found
    node = server.system_price_usd or (
        server.price_usd + hw.per_node * price if server.price_usd and price else None)
    network = network_cost(nodes, server.nics, inter_link or "", server.network_usd_per_nic)
    total = nodes * node + network if node is not None and network is not None else None
    basis = f"{nodes} x {name}" + ("" if nodes == 1 else f" + {inter_link} network"
                                   if network is not None else f" {UNPRICED_NETWORK}")
    if node is None:
        what = getattr(device, "name", "the device")
        basis += f" ({NO_PRICE}: {UNPRICED_DEVICE} {what} or its server)"
    return {"hardware_cost_usd": total if total is not None else None,
            "hardware_cost_basis": basis, "servers": nodes, "network_cost_usd": network}


def cloud_cost(scenario: Scenario, hours: float | None) -> dict[str, Any]:
    """The cheapest public offer that holds a node, for `hours` of training."""
    hw = scenario.hardware
    offers = [o for o in cloud_offers(failure_rate_device(hw.device)) if o.gpus >= hw.per_node]
    if not offers or hours is None:
        return {"cloud_cost_usd": None, "cloud_offer": None}
    cost, offer = min(((math.ceil(hw.count / o.gpus) * o.usd_per_hour * hours, o)
                       for o in offers), key=lambda pair: (pair[0], pair[1].provider))
    return {"cloud_cost_usd": cost,
            "cloud_offer": f"{offer.provider} {offer.instance} (${offer.usd_per_hour:g}/h, "
                           f"{offer.date})"}


def busy_share(row: dict[str, Any]) -> float | None:
    """Share of the step a device is working (not idle, not waiting for launches)."""
    step, parts = row.get("step_time_s"), row.get("breakdown")
    if not step or not parts:
        return None
    return max(0.0, 1.0 - (parts.get("idle", 0.0) + parts.get("launch", 0.0)) / step)


def power(scenario: Scenario, device: Any, busy: float | None) -> dict[str, Any]:
    """Mean and peak power of the cluster (devices and servers), times the PUE."""
    hw, model = scenario.hardware, energy_model()
    pue = hw.pue or model.pue
    tdp = getattr(device, "tdp_w", None)
    if not tdp:
        return {"power_w": None, "power_peak_w": None, "pue": pue}
    found = _server(scenario)
    parts = [(hw.count, tdp, model.idle_fraction_of_tdp * tdp)]
    if found is not None:
        server = found[1]
        idle = server.host_idle_w or model.idle_fraction_of_tdp * server.host_peak_w
        parts.append((hw.count // hw.per_node, server.host_peak_w, idle))
    peak = pue * sum(n * peak_w for n, peak_w, _ in parts)
    mean = None if busy is None else pue * sum(n * (idle + (peak_w - idle) * busy)
                                               for n, peak_w, idle in parts)
    return {"power_w": mean, "power_peak_w": peak, "pue": pue}


MIXED = "a mixed cluster"  # in the basis of a cluster of several device kinds


def mixed_cost_fields(scenario: Scenario, row: dict[str, Any]) -> dict[str, Any]:
    """A cluster of several device kinds is not priced (its servers, network and power
    would each need a model of the mix): every cost, power and energy field is None."""
    fields: dict[str, Any] = dict.fromkeys(COST_KEYS)
    fields.update(hardware_cost_basis=f"{NO_PRICE}: {MIXED} ({scenario.hardware.device_name})",
                  pue=scenario.hardware.pue or energy_model().pue, cores=row.get("cores"),
                  tdp_w=None, energy_j=None, energy_basis=None)
    return fields


def cost_fields(scenario: Scenario, device: Any, row: dict[str, Any]) -> dict[str, Any]:
    """Every cost, power and energy field of a results row (see the module docstring)."""
    if scenario.hardware.mixed:
        return mixed_cost_fields(scenario, row)
    step_s, train_s = row.get("step_time_s"), row.get("time_to_train_s")
    time_s, basis = (train_s, "time_to_train_s") if train_s else (step_s, "step_time_s")
    fields = hardware_cost(scenario, device, row.get("inter_link"))
    fields.update(cloud_cost(scenario, train_s / 3600.0 if train_s else None))
    fields.update(power(scenario, device, busy_share(row)))
    tdp = getattr(device, "tdp_w", None)
    energy = fields["power_w"] * time_s if fields["power_w"] is not None and time_s else None
    cost, rate = fields["hardware_cost_usd"], row.get("samples_per_s")
    fields.update(cores=scenario.hardware.count * int(getattr(device, "cores", 0)),
                  tdp_w=scenario.hardware.count * tdp if tdp else None, energy_j=energy,
                  energy_basis=basis if energy is not None else None,
                  samples_per_s_per_usd=rate / cost if rate and cost else None)
    return fields
