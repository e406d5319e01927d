"""Model definitions as data: a YAML layer list, validated, resolved to shapes and costs.

A model file has `name`, `input_shape` (per sample, e.g. [3, 224, 224]) and `layers`, each
`{name, kind, ...args}`; `inputs` names earlier layers (default: the previous layer), which
is how residual networks branch and join. Catalog models live in `workloads/models/`.
Model files are read by the one YAML reader (`simulator.core.yaml_source`), so they get its
limits and its `FILE:LINE: field: what is wrong` errors; every size is a bounded integer
(`MAX_SIZE`), and layer names the step's own ops use (`RESERVED_LAYER_NAMES`) are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
)
from pydantic_core import ErrorDetails

from simulator.core.errors import UserError, shown, unknown_name
from simulator.core.yaml_source import (
    PathPart,
    YamlSource,
    format_path,
    parse_yaml_text,
    read_yaml_source,
)
from workloads.layers import layer_kinds

REQUIRED_ARGS = {
    "conv2d": ("out_channels", "kernel"),
    "locally_connected": ("out_channels", "kernel"),
    "linear": ("out_features",),
    "maxpool2d": ("kernel",),
    "avgpool2d": ("kernel",),
    "l2pool2d": ("kernel",),
    "adaptive_avgpool2d": ("output_size",),
}
INPUT = "<input>"  # the model's input, as resolved layers name it
# the builder's own ops belong to these "layers" (input.h2d, loss.fwd, optimizer.step)
RESERVED_LAYER_NAMES = ("input", "loss", "optimizer", INPUT)
MAX_SIZE = 2**24  # any channel count, feature count, kernel, stride, padding or dimension
MAX_LAYERS = 10_000
EMPTY_MODEL = "a model needs 'name', 'input_shape' and 'layers'"


def _int_or_pair(low: int) -> PlainValidator:
    """An integer, or [height, width]: two integers, each from `low` to MAX_SIZE."""

    def check(value: Any) -> int | tuple[int, int]:
        pair = isinstance(value, (list, tuple))
        items = list(value) if pair else [value]
        if len(items) != (2 if pair else 1) or not all(
                type(v) is int and low <= v <= MAX_SIZE for v in items):
            raise ValueError(f"must be an integer or a list of two ([height, width]), each "
                             f"from {low} to {MAX_SIZE:,}, got {shown(value)}")
        return (items[0], items[1]) if pair else items[0]

    return PlainValidator(check)


Size = Annotated[int, Field(strict=True, ge=1, le=MAX_SIZE)]
SizeOrPair = Annotated[int | tuple[int, int], _int_or_pair(1)]
PaddingOrPair = Annotated[int | tuple[int, int], _int_or_pair(0)]
LayerName = Annotated[str, Field(strict=True, min_length=1, max_length=120,
                                 pattern=r"^[^\x00-\x1f\x7f]+$")]


class LayerDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: LayerName
    kind: Annotated[str, Field(strict=True, min_length=1, max_length=120)]
    inputs: list[LayerName] | None = Field(default=None, max_length=MAX_LAYERS)
    out_channels: Size | None = None
    out_features: Size | None = None
    in_features: Size | None = None
    kernel: SizeOrPair | None = None
    stride: SizeOrPair | None = None
    padding: PaddingOrPair | None = None
    groups: Size | None = None
    bias: Annotated[bool, Field(strict=True)] | None = None
    output_size: SizeOrPair | None = None
    p: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] | None = None

    def args(self) -> dict[str, Any]:
        skip = {"name", "kind", "inputs"}
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}


class ModelDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: LayerName
    description: str = ""
    sources: list[str] = []
    assumptions: list[str] = []
    input_shape: tuple[Size, ...] = Field(min_length=1, max_length=3)
    input_bytes_per_element: float = Field(4.0, gt=0, le=64, allow_inf_nan=False)
    layers: list[LayerDef] = Field(min_length=1, max_length=MAX_LAYERS)
    _source: YamlSource | None = PrivateAttr(None)  # the file, for located errors

    def problem(self) -> tuple[tuple[PathPart, ...], str] | None:
        """The first problem the schema cannot see, as (field path, message), or None:
        names unique and not reserved, kinds known, required arguments present, inputs
        defined earlier."""
        seen: set[str] = set()
        for i, layer in enumerate(self.layers):
            found = _layer_problem(layer, seen)
            if found is not None:
                return ("layers", i, *found[0]), found[1]
            seen.add(layer.name)
        return None

    def check(self, where: str) -> ModelDef:
        """`self`, or a UserError `WHERE: layers[I] (NAME): what is wrong`."""
        found = self.problem()
        if found is not None:
            i = int(found[0][1])
            raise UserError(f"{where}: layers[{i}] ({self.layers[i].name}): {found[1]}")
        return self

    def located(self, path: Sequence[PathPart], what: str) -> UserError | None:
        """`FILE:LINE: field: what` for a model read from a file; None for one built in code."""
        return self._source.error(path, what) if self._source is not None else None


def _layer_problem(layer: LayerDef, seen: set[str]) -> tuple[tuple[PathPart, ...], str] | None:
    if layer.name in seen:
        return ("name",), f"duplicate layer name '{layer.name}'"
    if layer.name in RESERVED_LAYER_NAMES:
        return ("name",), (f"layer name '{layer.name}' is reserved (the step's own ops use "
                           f"{', '.join(RESERVED_LAYER_NAMES)}); rename the layer")
    if layer.kind not in layer_kinds.names():
        return ("kind",), str(unknown_name("layer kind", layer.kind, layer_kinds.names()))
    for arg in REQUIRED_ARGS.get(layer.kind, ()):
        if getattr(layer, arg) is None:
            return (), f"kind {layer.kind} needs '{arg}'"
    for j, src in enumerate(layer.inputs or []):
        if src not in seen:
            return ("inputs", j), f"input '{src}' is not an earlier layer"
    return None


def catalog_models() -> list[str]:
    folder = resources.files("workloads") / "models"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _data_path(data: Any, loc: Sequence[str | int]) -> tuple[PathPart, ...]:
    """pydantic's error location with its union-member tags left out: the keys and indices
    that lead through `data` (and a missing key at the end)."""
    path: list[PathPart] = []
    for part in loc:
        if isinstance(data, dict):
            path.append(part)
            if part not in data:
                break
            data = data[part]
        elif isinstance(data, (list, tuple)) and isinstance(part, int) and part < len(data):
            path.append(part)
            data = data[part]
    return tuple(path)


_SIZE_WORDS = {"too_short": "must have at least", "too_long": "must have at most",
               "string_too_short": "must have at least", "string_too_long": "must have at most"}


def _limit(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    count = ctx.get("min_length", ctx.get("max_length", "?"))
    unit = "character" if error["type"].startswith("string") else "item"
    return f"{count} {unit}{'' if count == 1 else 's'}"


def _describe(error: ErrorDetails, path: tuple[PathPart, ...]) -> str:
    kind, got = error["type"], shown(error.get("input"))
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        fields = LayerDef.model_fields if path[:1] == ("layers",) else ModelDef.model_fields
        return f"unknown field {shown(path[-1])}; valid fields: {', '.join(fields)}"
    if kind == "model_type":
        return f"must be a mapping with name, kind and the kind's arguments, got {got}"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return f"must be printable text (no tabs, line breaks or control characters), got {got}"
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        return f"{_SIZE_WORDS[kind]} {_limit(error)}, got {got}"
    return f"{error['msg'].replace('Input should be', 'must be')}, got {got}"


def parse_model(data: Any, where: str, source: YamlSource | None = None) -> ModelDef:
    """Validate a model given as a mapping (from YAML or an experiment file)."""
    try:
        model = ModelDef.model_validate(data)
    except ValidationError as err:
        errors = err.errors()
        first = ([e for e in errors if e["type"] == "extra_forbidden"] or errors)[0]
        path = _data_path(data, first["loc"])
        if source is not None:
            raise source.error(path, _describe(first, path)) from None
        raise UserError(f"{where}: {format_path(path)}: {_describe(first, path)}") from None
    if source is None:
        return model.check(where)
    model._source = source
    found = model.problem()
    if found is not None:
        raise source.error(*found)
    return model


def _model_source(name_or_path: str) -> YamlSource:
    if name_or_path.endswith((".yaml", ".yml")):
        return read_yaml_source(Path(name_or_path), empty=EMPTY_MODEL)
    if name_or_path in catalog_models():
        ref = resources.files("workloads") / "models" / f"{name_or_path}.yaml"
        return parse_yaml_text(ref.read_text(encoding="utf-8"),
                               f"workloads/models/{name_or_path}.yaml", EMPTY_MODEL)
    raise unknown_name("model", name_or_path, catalog_models())


def load_model(name_or_path: str) -> ModelDef:
    """A catalog model by name (`vgg16`) or a model YAML file by path; a bad file is one
    UserError line `FILE:LINE: field: what is wrong`."""
    source = _model_source(name_or_path)
    if not isinstance(source.data, dict):
        raise source.error((), "a model must be a mapping with name, input_shape and layers, "
                               f"got {type(source.data).__name__}")
    return parse_model(source.data, source.where, source)
