"""Model importers: a `--model` (or YAML `model:`) that is not a catalog name or a model YAML
file is read by the importer that recognises it (`FILE.onnx`: ONNX; `torchvision:NAME` and
`FILE.py:FACTORY`: PyTorch through torch.fx) into a `ModelDef` of our own layer kinds, so an
imported network is costed by the same formulas. Importers are plugins (registry `importer`,
entry-point group `simulator.importer`): an `Importer` with `matches(ref)` and
`load(ref, options)`. An import is done once per process for the same file and options.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from simulator.core import plugins
from simulator.core.errors import UserError
from simulator.core.registry import Registry
from workloads.model_def import ModelDef, load_model

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ImportOptions:
    """What the user binds: the sequence length of symbolic dimensions; whether operators
    without a formula are costed as memory-bound elementwise kernels (with a warning)."""

    seq_len: int | None = None
    unsupported_as_elementwise: bool = False


@dataclass(frozen=True)
class Importer:
    name: str
    matches: Callable[[str], bool]
    load: Callable[[str, ImportOptions], ModelDef]
    extra: str  # the pip extra that brings its dependency


importers: Registry[Importer] = plugins.importer


class ModelWarning(UserWarning):
    """A model was imported with an approximation the user asked for (printed one line)."""


def _doubled_axis(one: Shape | None, two: Shape | None) -> int | None:
    """The one axis of a tensor that doubles from one sample (`one`) to two (`two`)."""
    if one is None or two is None or len(one) != len(two):
        return None
    axes = [i for i, (a, b) in enumerate(zip(one, two, strict=True)) if a != b]
    return axes[0] if len(axes) == 1 and two[axes[0]] == 2 * one[axes[0]] else None


def per_sample(one: Shape | None, two: Shape | None) -> Shape | None:
    """The per-sample shape of a tensor shaped `one` for one sample and `two` for two: the
    axis that doubles is the batch's, taken out where it has size one and divided out where
    the batch is folded into it (a (batch x seq, d) view); None without one such axis."""
    axis = _doubled_axis(one, two)
    if axis is None or one is None:
        return None
    return one[:axis] + one[axis + 1:] if one[axis] == 1 else one


def batch_axis(one: Shape | None, two: Shape | None) -> int | None:
    """The batch's axis of a tensor (as for `per_sample`) where it is an axis of its own,
    else None (no batch, or a batch folded into another axis)."""
    axis = _doubled_axis(one, two)
    return axis if axis is not None and one is not None and one[axis] == 1 else None


def importer_for(ref: str) -> Importer | None:
    for name in importers.names():
        found = importers.get(name)
        if found.matches(ref):
            return found
    return None


def require(module: str, ref: str, extra: str) -> ModuleType:
    """The optional dependency `module`, or a UserError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{ref} needs the {module} package: "
                        f"pip install 'simulator[{extra}]'") from None


def _stamp(ref: str) -> tuple[int, int]:
    """(size, mtime) of the file a reference names, so that an edited file is read again."""
    path = Path(ref.split(":", 1)[0]) if ":" in ref and not ref.endswith(".onnx") else Path(ref)
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _imported(ref: str, options: ImportOptions, stamp: tuple[int, int]) -> ModelDef:
    found = importer_for(ref)
    assert found is not None
    return found.load(ref, options)


def resolve_model(ref: str | ModelDef, seq_len: int | None = None,
                  unsupported_as_elementwise: bool = False) -> ModelDef:
    """The model a workload names, for its sequence length: a ModelDef as it is, a catalog
    name or model YAML file, or an imported model (whose symbolic sizes the import binds)."""
    if isinstance(ref, str) and importer_for(ref) is not None:
        options = ImportOptions(seq_len, unsupported_as_elementwise)
        return _imported(ref, options, _stamp(ref))
    if unsupported_as_elementwise:
        raise UserError("unsupported_as_elementwise applies to an imported model (ONNX or "
                        "torch.fx), not to a layer-list model")
    model = load_model(ref) if isinstance(ref, str) else ref
    return model.with_seq_len(seq_len)
