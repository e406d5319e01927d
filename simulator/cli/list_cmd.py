"""`python -m simulator list hardware|links|models`: the catalog as a table."""

from __future__ import annotations

from hardware_models.catalog_io import (
    default_profile,
    device_names,
    link_names,
    load_link,
    load_spec,
    make_device,
)
from simulator.core.errors import UserError
from workloads.builder import resolve_layers
from workloads.model_def import catalog_models, load_model


def _hardware() -> list[str]:
    rows = [f"{'name':18s} {'kind':4s} {'cores':>7s} {'peak fp32':>10s} {'memory':>9s} "
            f"{'bandwidth':>11s} {'price':>8s}  profile"]
    for name in device_names():
        spec, device = load_spec(name), make_device(name)  # any kind: the device's own peak
        fp32, price = device.peak_flops("fp32"), getattr(spec, "price_usd", None)
        rows.append(f"{name:18s} {spec.kind:4s} {device.cores:7d} {fp32 / 1e12:7.2f} TF "
                    f"{spec.memory_bytes / 1e9:6.0f} GB "
                    f"{spec.memory_bandwidth_bytes_per_s / 1e9:7.1f} GB/s "
                    f"{f'${price:,.0f}' if price else 'none':>8s}"
                    f"  {default_profile(spec).origin}")
    rows.append(f"{'ideal':18s} built-in contention-free device for exact-time tests")
    return rows


def _links() -> list[str]:
    rows = [f"{'name':12s} {'bandwidth/dir':>14s} {'latency':>10s}  profile"]
    for name in link_names():
        link = load_link(name)
        rows.append(f"{name:12s} {link.bandwidth_bytes_per_s / 1e9:9.2f} GB/s "
                    f"{link.latency_s * 1e6:7.2f} us  {link.origin}")
    return rows


def _models() -> list[str]:
    names = catalog_models()
    width = max([len("name"), *map(len, names)])  # mobilenet_v2 is longer than 10
    rows = [f"{'name':{width}s} {'params':>14s} {'GMACs/sample':>13s}  description"]
    for name in names:
        model = load_model(name)
        layers = resolve_layers(model, 1)
        macs = sum(layer.cost.fwd.flops for layer in layers
                   if layer.cost.fwd and layer.cost.fwd.kind == "gemm") / 2
        params = sum(layer.cost.params for layer in layers)
        rows.append(f"{name:{width}s} {params:14,d} {macs / 1e9:13.2f}  {model.description}")
    return rows


def run_list(what: str) -> None:
    listers = {"hardware": _hardware, "links": _links, "models": _models}
    if what not in listers:
        raise UserError(f"unknown list '{what}'; choose one of: {', '.join(listers)}")
    print("\n".join(listers[what]()))
