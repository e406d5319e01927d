"""Model definitions as data: a YAML layer list, validated, resolved to shapes and costs.

A model file has `name`, `input_shape` (per sample, e.g. [3, 224, 224]) and `layers`, each
`{name, kind, ...args}`; `inputs` names earlier layers (default: the previous layer), which
is how residual networks branch and join (`input` is the model's input). An input_shape may
hold `seq_len`, the sequence length, sized by the workload (default: the model's `seq_len`).
Catalog models live in `workloads/models/`.
Model files are read by the one YAML reader (`simulator.core.yaml_source`), so they get its
limits and its `FILE:LINE: field: what is wrong` errors; every size is a bounded integer
(`MAX_SIZE`), and layer names the step's own ops use (`RESERVED_LAYER_NAMES`) are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

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
from simulator.core.held_cache import HeldCache
from simulator.core.listing import yaml_names
from simulator.core.yaml_source import (
    MAX_FILE_BYTES,
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
    "embedding": ("num_embeddings", "embedding_dim"),
    "attention": ("heads",),
    "tied_linear": ("out_features", "tied_to"),
    "reshape": ("shape",),
    "elementwise": ("shape",),
}
POOL_KINDS = ("maxpool2d", "avgpool2d", "l2pool2d")  # the kinds that take ceil_mode
INPUT = "<input>"  # the model's input, as resolved layers name it
MODEL_INPUT = "input"  # what `inputs` calls the model's input (the first layer's default)
SEQ_LEN = "seq_len"  # the sequence dimension of an input_shape, sized by the workload
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
    ceil_mode: Annotated[bool, Field(strict=True)] | None = None  # pooling: round sizes up
    groups: Size | None = None
    bias: Annotated[bool, Field(strict=True)] | None = None
    output_size: SizeOrPair | None = None
    p: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] | None = None
    num_embeddings: Size | None = None
    embedding_dim: Size | None = None
    position: Annotated[bool, Field(strict=True)] | None = None
    heads: Size | None = None
    causal: Annotated[bool, Field(strict=True)] | None = None
    # attention: unfused or flash; gelu: fused or unfused_tanh
    implementation: Literal["unfused", "flash", "fused", "unfused_tanh"] | None = None
    index: Annotated[int, Field(strict=True, ge=0, le=MAX_SIZE)] | None = None
    tied_to: LayerName | None = None
    shape: tuple[Size, ...] | None = Field(default=None, min_length=1, max_length=8)
    op: LayerName | None = None
    # elementwise: the elements of a learned tensor it reads (a position embedding added)
    params: Annotated[int, Field(strict=True, ge=0, le=2**40)] | None = None

    def args(self) -> dict[str, Any]:
        """The layer's arguments (the fields set, less name, kind and inputs)."""
        return dict(self._args)

    @cached_property
    def _args(self) -> dict[str, Any]:
        # dumped once per layer: every step built of the layer reads them (a layer is frozen;
        # a changed copy is a new model_validate, not model_copy(update=...))
        skip = {"name", "kind", "inputs"}
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}

    @cached_property
    def args_key(self) -> str:
        """The layer's arguments as one hashable value (equal for equal arguments): what
        layer resolution keys its costs by, with the kind, input shapes and batch."""
        return repr(sorted(self._args.items()))


# A model bound to a sequence length, by the model (held) and the length: one object per
# pair, so the graphs and layers cached by model object are shared by the points of a sweep
_bound = HeldCache(64)


class ModelDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: LayerName
    description: str = ""
    sources: list[str] = []
    assumptions: list[str] = []
    input_shape: tuple[Size | Literal["seq_len"], ...] = Field(min_length=1, max_length=3)
    seq_len: Size | None = None  # the default sequence length where input_shape has seq_len
    input_bytes_per_element: float = Field(4.0, gt=0, le=64, allow_inf_nan=False)
    layers: list[LayerDef] = Field(min_length=1, max_length=MAX_LAYERS)
    _source: YamlSource | None = PrivateAttr(None)  # the file, for located errors

    @property
    def shape(self) -> tuple[int, ...]:
        """The input shape of one sample, the sequence length put in for `seq_len`."""
        return tuple((self.seq_len or 0) if d == SEQ_LEN else int(d) for d in self.input_shape)

    @property
    def has_sequence(self) -> bool:
        return SEQ_LEN in self.input_shape

    def with_seq_len(self, seq_len: int | None) -> ModelDef:
        """This model for sequences of `seq_len` (None: its default); a model without a
        sequence dimension is a UserError."""
        if seq_len is None:
            return self
        if not self.has_sequence:
            raise UserError(f"seq_len: model {self.name} has no sequence dimension (its "
                            "input_shape has no seq_len); leave seq_len out")
        bound: ModelDef | None = _bound.get((self,), seq_len)
        if bound is None:
            bound = self.model_copy(update={"seq_len": seq_len})
            bound._source = self._source
            _bound.put((self,), seq_len, bound)
        return bound

    def problem(self) -> tuple[tuple[PathPart, ...], str] | None:
        """The first problem the schema cannot see, as (field path, message), or None:
        a default seq_len where the input has a sequence dimension, names unique and not
        reserved, kinds known, required arguments present, inputs defined earlier."""
        if self.has_sequence != (self.seq_len is not None):
            return (("seq_len",), "input_shape has seq_len: give seq_len, the default sequence "
                    "length") if self.has_sequence else (("seq_len",), "seq_len is the default "
                    "of a seq_len dimension, and input_shape has none")
        seen: dict[str, LayerDef] = {}
        for i, layer in enumerate(self.layers):
            found = _layer_problem(layer, seen)
            if found is not None:
                return ("layers", i, *found[0]), found[1]
            seen[layer.name] = layer
        return None

    def check(self, where: str) -> ModelDef:
        """`self`, or a UserError `WHERE: layers[I] (NAME): what is wrong`."""
        found = self.problem()
        if found is not None and found[0][0] != "layers":
            raise UserError(f"{where}: {format_path(found[0])}: {found[1]}")
        if found is not None:
            i = int(found[0][1])
            raise UserError(f"{where}: layers[{i}] ({self.layers[i].name}): {found[1]}")
        return self

    def located(self, path: Sequence[PathPart], what: str) -> UserError | None:
        """`FILE:LINE: field: what` for a model read from a file; None for one built in code."""
        return self._source.error(path, what) if self._source is not None else None


def _tie_problem(layer: LayerDef, seen: dict[str, LayerDef]) -> str | None:
    """A tied head's weight must be an earlier embedding's, of its output width."""
    table = seen.get(layer.tied_to or "")
    if table is None or table.kind != "embedding" or table.position:
        return f"tied_to '{layer.tied_to}' is not an earlier token embedding layer"
    if table.num_embeddings != layer.out_features:
        return (f"out_features {layer.out_features} differs from the {table.num_embeddings} "
                f"rows of the embedding '{table.name}' it is tied to")
    return None


def _layer_problem(layer: LayerDef,
                   seen: dict[str, LayerDef]) -> tuple[tuple[PathPart, ...], str] | None:
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
    if layer.ceil_mode is not None and layer.kind not in POOL_KINDS:
        return ("ceil_mode",), (f"kind {layer.kind} has no ceil_mode (only "
                                f"{', '.join(POOL_KINDS)} do)")
    for j, src in enumerate(layer.inputs or []):
        if src not in seen and src != MODEL_INPUT:
            return ("inputs", j), f"input '{src}' is not an earlier layer"
    tie = _tie_problem(layer, seen) if layer.kind == "tied_linear" else None
    return (("tied_to",), tie) if tie else None


@cache
def _catalog_folder() -> Any:
    return resources.files("workloads") / "models"


def catalog_models() -> list[str]:
    return list(yaml_names(_catalog_folder()))


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


MODEL_CACHE_SIZE = 256  # models kept parsed (a sweep over models parses each file once)
_parsed: dict[tuple[Any, ...], ModelDef] = {}


def _cache_key(name_or_path: str) -> tuple[Any, ...] | None:
    """A catalog model by its name; a file by its resolved path and the sha256 of its bytes
    (an edited file is parsed again); None (not cached) where the file cannot be read here
    or is over the reader's size limit (the reader then says what is wrong)."""
    if not name_or_path.endswith((".yaml", ".yml")):
        return ("catalog", name_or_path)
    try:
        path = Path(name_or_path).resolve()
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, RuntimeError):
        return None
    return ("file", str(path), digest)


def load_model(name_or_path: str) -> ModelDef:
    """A catalog model by name (`vgg16`) or a model YAML file by path; a bad file is one
    UserError line `FILE:LINE: field: what is wrong`. Parsed once per process (models are
    frozen), again when the file changes."""
    key = _cache_key(name_or_path)
    if key is not None and key in _parsed:
        return _parsed[key]
    source = _model_source(name_or_path)
    if not isinstance(source.data, dict):
        raise source.error((), "a model must be a mapping with name, input_shape and layers, "
                               f"got {type(source.data).__name__}")
    model = parse_model(source.data, source.where, source)
    if key is not None:
        if len(_parsed) >= MODEL_CACHE_SIZE:
            _parsed.pop(next(iter(_parsed)))
        _parsed[key] = model
    return model
