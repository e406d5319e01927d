"""Benchmark: which of torchvision's classification models the torch.fx importer takes in
(not a test; prints figures; CPU torch and torchvision, several minutes on two cores).

For each model: `ok` with its parameter count (the importer checks it against torch's) and
the import's wall time, or the one-line error it gives (the operators still without a
formula). Prints the count that import at the end.

    python benchmarks/torchvision_import.py [NAME ...]
"""

from __future__ import annotations

import sys
import time
import warnings

import torch

from simulator.core.errors import UserError
from workloads.builder import build_graph
from workloads.importers import ModelWarning, resolve_model
from workloads.torch_import import load_torchvision


def one(name: str) -> tuple[bool, str]:
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ModelWarning)
            params = build_graph(resolve_model(f"torchvision:{name}"), 1, "infer").params
    except UserError as err:
        return False, str(err).split(": ", 1)[1][:160]
    return True, f"ok  {params:>13,} parameters  {time.perf_counter() - start:5.1f} s"


def main() -> None:
    torchvision = load_torchvision(torch, "benchmark")
    names = sys.argv[1:] or sorted(torchvision.models.list_models(module=torchvision.models))
    imported = 0
    for name in names:
        ok, line = one(name)
        imported += ok
        print(f"{name:22} {line}", flush=True)
    print(f"{imported} of {len(names)} torchvision classification models import "
          f"(torch {torch.__version__}, torchvision {torchvision.__version__})")


if __name__ == "__main__":
    main()
