"""How an experiment names things in the catalog, checked while the file is validated.

A workload's `model` is a catalog model name, a model YAML file (relative to the experiment
file) or an inline layer list; a device is a catalog name, `ideal`, a catalog device with
some fields overridden (`{base: gtx-1080, overrides: {...}}`), or a full inline spec (a
mapping with `kind: cpu|gpu` and every spec field). Links are catalog link names. Every
unknown name is reported with the valid names; every inline definition is checked as
deeply as the catalog's own files (an inline model is resolved to shapes, once).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from hardware_models.catalog_io import BUILTIN, device_names, is_device_name, link_names, load_spec
from hardware_models.link_files import is_link_file, load_link_file
from hardware_models.spec import CPUSpec, GPUSpec
from simulator.config.errors import check_finite, invalid, nested
from simulator.core.errors import UserError, unknown_name
from simulator.core.held_cache import HeldCache
from workloads.builder import resolve_layers
from workloads.generators import parse_spec_string, task_workload
from workloads.importers import importer_for
from workloads.model_def import ModelDef, catalog_models
from workloads.task_graph import TaskGraph
from workloads.workload_file import load_workload

DeviceSpec = CPUSpec | GPUSpec
SPEC_OF_KIND: dict[str, type[CPUSpec | GPUSpec]] = {"cpu": CPUSpec, "gpu": GPUSpec}
FIXED_SPEC_FIELDS = ("kind", "name")


def _unknown(kind: str, name: str, valid: list[str]) -> Any:
    return invalid(str(unknown_name(kind, name, valid)))


def _layer_index(model: ModelDef, message: str) -> tuple[str | int, ...]:
    for i, layer in enumerate(model.layers):
        if f"({layer.name})" in message or f"layer {layer.name}:" in message:
            return ("layers", i)
    return ()


# Inline models by their content (every field, dumped): each point of a sweep validates its
# inline model anew, and one object per content lets the graphs, layers and steps cached by
# model object serve them all
_inline_models = HeldCache(64)


def _inline_model(model: ModelDef) -> ModelDef:
    key = model.model_dump_json()
    found: ModelDef | None = _inline_models.get((), key)
    if found is None:
        found = _check_inline_model(model)
        _inline_models.put((), key, found)
    return found


def _check_inline_model(model: ModelDef) -> ModelDef:
    """Names, kinds and shapes of an inline model, errors located at the failing layer."""
    try:
        model.check("model")
    except UserError as err:
        message = re.sub(r"^model: layers\[\d+\] \([^)]*\): ", "", str(err))
        raise invalid(message, _layer_index(model, str(err))) from None
    try:
        resolve_layers(model, 1)
    except UserError as err:
        detail = re.sub(r"^model [^:]*: layer [^:]*: ", "", str(err))
        raise invalid(f"layer does not fit the shape of its input: {detail}",
                      _layer_index(model, str(err))) from None
    return model


def _task_graph(data: dict[str, Any]) -> TaskGraph:
    """A task graph or a generator's arguments (`kind:` given), errors as the field's."""
    try:
        return task_workload(data, "model")
    except UserError as err:
        raise invalid(str(err).removeprefix("model: ")) from None


def model_ref(value: Any, base_dir: Path | None) -> str | ModelDef | TaskGraph:
    """A catalog name or an importer's reference (`FILE.onnx`, `torchvision:NAME`,
    `FILE.py:FACTORY`) stays a string; a model file or an inline mapping becomes a ModelDef; a
    mapping or file with `kind:` (task_graph, blocked_lu, tiled_gemm) or a generator string
    (`blocked_lu:n=4096,block=256`) becomes a TaskGraph."""
    if isinstance(value, ModelDef):
        return _check_inline_model(value)
    if isinstance(value, TaskGraph):
        return value.check("model")
    if isinstance(value, dict) and "kind" in value:
        return _task_graph(value)
    if isinstance(value, dict):
        return _inline_model(nested(ModelDef, value))
    if not isinstance(value, str) or not value:
        raise invalid("must be a catalog model name, a model YAML file, a mapping with "
                      "name, input_shape and layers, or a task graph (kind: task_graph, "
                      f"blocked_lu or tiled_gemm); got {value!r}")
    spec = parse_spec_string(value)
    if spec is not None:
        return _task_graph(spec)
    if importer_for(value) is not None:  # imported with the workload's seq_len (schema.py)
        file = value if value.endswith(".onnx") else value.rsplit(":", 1)[0]
        relative = base_dir is not None and not Path(file).is_absolute()
        if relative and file.endswith((".onnx", ".py")):
            assert base_dir is not None
            return str(base_dir / value)
        return value
    if value.endswith((".yaml", ".yml")):
        path = Path(value) if base_dir is None or Path(value).is_absolute() else base_dir / value
        try:
            return load_workload(str(path))
        except UserError as err:
            raise invalid(str(err)) from None
    if value not in catalog_models():
        raise _unknown("model", value, catalog_models())
    return value


def link_ref(value: Any) -> str | None:
    if value is None:
        return None
    if is_link_file(value):  # a link spec or a calibrate-link profile, by path
        try:
            load_link_file(Path(value))
        except UserError as err:
            raise invalid(str(err)) from None
        return value
    if not isinstance(value, str) or value not in link_names():
        raise _unknown("link", str(value), link_names())
    return value


def _validate_spec(data: dict[str, Any]) -> DeviceSpec:
    check_finite(data)
    kind = data.get("kind")
    if kind not in SPEC_OF_KIND:
        raise invalid(f"must be 'cpu' or 'gpu', got {kind!r}", ("kind",))
    spec = nested(SPEC_OF_KIND[kind], data)
    if isinstance(spec, GPUSpec) and spec.host_link not in link_names():
        raise invalid(str(unknown_name("link", spec.host_link, link_names())), ("host_link",))
    return spec


class DerivedDevice(BaseModel):
    """A catalog device with some spec fields changed: the 'what if' device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str
    name: str | None = Field(default=None, min_length=1, description="default: BASE-modified")
    overrides: dict[str, Any] = Field(default_factory=dict)
    _spec: DeviceSpec | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _build(self) -> DerivedDevice:
        if self.base not in device_names():
            raise invalid(str(unknown_name("hardware", self.base, device_names())), ("base",))
        base = load_spec(self.base)
        for key in self.overrides:
            if key in FIXED_SPEC_FIELDS or key not in type(base).model_fields:
                allowed = [f for f in type(base).model_fields if f not in FIXED_SPEC_FIELDS]
                raise invalid(f"'{key}' cannot be overridden on a {base.kind} device; "
                              f"valid fields: {', '.join(allowed)}", ("overrides", key))
        data = {**base.model_dump(), **self.overrides, "name": self.display}
        try:
            self._spec = _validate_spec(data)
        except PydanticCustomError as err:  # re-locate the inner error under `overrides`
            ctx = err.context or {}
            raise invalid(str(ctx.get("detail", err.message())),
                          ("overrides", *ctx.get("subpath", ()))) from None
        return self

    @property
    def display(self) -> str:
        return self.name or f"{self.base}-modified"

    @property
    def spec(self) -> DeviceSpec:
        assert self._spec is not None
        return self._spec


DeviceRef = str | DerivedDevice | CPUSpec | GPUSpec


def device_ref(value: Any) -> DeviceRef:
    """Check a device reference; inline definitions become validated objects."""
    if isinstance(value, str) and value.endswith((".yaml", ".yml")):
        if not Path(value).is_file():
            raise invalid(f"profile file {value} does not exist")
        return value  # a calibrated profile by path: read (and checked) when the device is made
    if isinstance(value, str):
        if value not in BUILTIN and not is_device_name(value):
            raise _unknown("hardware", value, device_names() + list(BUILTIN))
        return value
    if isinstance(value, dict) and "base" in value:
        return nested(DerivedDevice, value)
    if isinstance(value, dict):
        return _validate_spec(value)
    raise invalid("must be a catalog device name, {base: NAME, overrides: {...}} or a full "
                  f"device spec with kind: cpu|gpu; got {value!r}")
