"""Torchvision networks nobody fitted: H200 PyTorch steps (`benchmarks/torch_zoo.py`, data on
the device) of networks outside the catalog — DenseNet-121 in the zoo's runs, ViT-B/16,
EfficientNet-B0, ConvNeXt-T, GoogLeNet and SqueezeNet 1.0 in the held-out zoo — imported
through torch.fx (`torchvision:NAME`) and predicted with the catalog's profiles as they are.

What those profiles were fitted on, and so what "held out" means here:
- the host profile (`calibrate-host`) on the steps of catalog models only (`step_records`
  skips every other model): none of these networks' steps;
- the H200's convolution, batch-norm and pooling terms (`calibrate-conv`) on layers timed
  alone (`conv_layers.LAYER_FILES`), among them EfficientNet-B0's and ConvNeXt-T's depthwise
  and batch-norm layers and DenseNet-121's, SqueezeNet 1.0's and GoogLeNet's pooling layers: a
  network whose layers are there is predicted with those terms refitted without its layers
  (`fit_conv_layers(exclude=...)`, as `benchmarks/accuracy.py` holds the zoo's networks out),
  the others with the catalog's.
A row is host-bound where its measured host issue time is at least 90% of its step (as for
the transformers: DenseNet-121's 121 layers keep the host busier than the GPU up to batch 32).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from hardware_models.catalog_io import device_profile, load_spec
from hardware_models.host import catalog_host
from simulator.calibrate.conv_layers import fit_conv_layers, layer_records
from simulator.calibrate.host import gpu_step_records, median_of_runs, simulate_step
from simulator.core.errors import UserError
from simulator.validate.compare import grouped_errors
from simulator.validate.transformers import issue_bound
from workloads.importers import ModelWarning, resolve_model
from workloads.model_def import catalog_models

HARDWARE = "h200"
# runs of the zoo (each configuration's time: the median over the runs that have it)
ZOO_FILES = ("h200-torch-zoo-run1.json", "h200-torch-zoo.json", "h200-run3-torch-zoo.json",
             "h200-heldout-torch-zoo.json")


def heldout_records(paths: list[Path]) -> list[dict[str, Any]]:
    """The GPU steps of networks outside the catalog, the median over the runs."""
    known = set(catalog_models())
    runs = [[r for r in gpu_step_records(p) if r["model"] not in known] for p in paths]
    return median_of_runs(runs)


def _imports(ref: str) -> str | None:
    """None where `ref` imports, else the importer's one-line reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ModelWarning)
            resolve_model(ref)
    except UserError as err:
        return str(err)
    return None


def heldout_rows(records: list[dict[str, Any]], layers: dict[str, Any] | None
                 ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every step predicted (rows), and the networks that do not import (with why)."""
    host = catalog_host("pytorch")
    if host is None:
        raise UserError("the catalog has no PyTorch host profile (hardware_models/catalog/"
                        "hosts/pytorch.yaml) to predict the steps with")
    fitted_layers = {n for r in layer_records(layers) for n in r["networks"]} if layers else set()
    rows, skipped = [], {}
    for network in sorted({r["model"] for r in records}):
        ref = f"torchvision:{network}"
        problem = _imports(ref)
        if problem is not None:
            skipped[network] = problem
            continue
        profile = (fit_conv_layers(layers, HARDWARE, device_profile(load_spec(HARDWARE)),
                                   exclude=network)
                   if layers is not None and network in fitted_layers else None)
        refit = profile is not None
        for rec in (r for r in records if r["model"] == network):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ModelWarning)
                predicted = simulate_step({**rec, "model": ref}, HARDWARE, host, profile)
            rows.append({**{k: rec[k] for k in ("model", "mode", "batch", "precision")},
                         "host_bound": issue_bound(rec), "layers_refitted": refit,
                         "runs": rec["runs"], "measured_s": rec["median_s"],
                         "predicted_s": predicted, "error": predicted / rec["median_s"] - 1})
    return rows, skipped


def heldout_summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """MAPE, median and worst absolute error per network, mode and precision; per network
    and regime; and over all rows of each regime."""
    def keys(r: dict[str, Any]) -> tuple[str, ...]:
        regime = "host-bound" if r["host_bound"] else "device"
        return (f"{r['model']} {r['mode']} {r['precision']}", f"{r['model']} {regime}",
                f"all {regime}", "all")

    return grouped_errors(rows, keys)
