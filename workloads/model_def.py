"""Model definitions as data: a YAML layer list, validated, resolved to shapes and costs.

A model file has `name`, `input_shape` (per sample, e.g. [3, 224, 224]) and `layers`, each
`{name, kind, ...args}`; `inputs` names earlier layers (default: the previous layer), which
is how residual networks branch and join. Catalog models live in `workloads/models/`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from simulator.core.errors import UserError, unknown_name
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


class LayerDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: str
    inputs: list[str] | None = None
    out_channels: PositiveInt | None = None
    out_features: PositiveInt | None = None
    kernel: PositiveInt | tuple[PositiveInt, PositiveInt] | None = None
    stride: PositiveInt | tuple[PositiveInt, PositiveInt] | None = None
    padding: int | tuple[int, int] | None = Field(default=None, ge=0)
    groups: PositiveInt | None = None
    bias: bool | None = None
    output_size: PositiveInt | tuple[PositiveInt, PositiveInt] | None = None
    p: float | None = Field(default=None, ge=0, lt=1)

    def args(self) -> dict[str, Any]:
        skip = {"name", "kind", "inputs"}
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}


class ModelDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    sources: list[str] = []
    assumptions: list[str] = []
    input_shape: tuple[PositiveInt, ...] = Field(min_length=1, max_length=3)
    input_bytes_per_element: PositiveFloat = 4.0
    layers: list[LayerDef] = Field(min_length=1)

    def check(self, where: str) -> ModelDef:
        """Names unique, kinds known, required arguments present, inputs defined earlier."""
        seen: set[str] = set()
        for i, layer in enumerate(self.layers):
            path = f"{where}: layers[{i}] ({layer.name})"
            if layer.name in seen:
                raise UserError(f"{path}: duplicate layer name '{layer.name}'")
            if layer.kind not in layer_kinds.names():
                unknown = unknown_name("layer kind", layer.kind, layer_kinds.names())
                raise UserError(f"{path}: {unknown}")
            for arg in REQUIRED_ARGS.get(layer.kind, ()):
                if getattr(layer, arg) is None:
                    raise UserError(f"{path}: kind {layer.kind} needs '{arg}'")
            for src in layer.inputs or []:
                if src not in seen:
                    raise UserError(f"{path}: input '{src}' is not an earlier layer")
            seen.add(layer.name)
        return self


def catalog_models() -> list[str]:
    folder = resources.files("workloads") / "models"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def parse_model(data: Any, where: str) -> ModelDef:
    """Validate a model given as a mapping (from YAML or an experiment file)."""
    try:
        return ModelDef.model_validate(data).check(where)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{where}: {field}: {first['msg']}") from None


def load_model(name_or_path: str) -> ModelDef:
    """A catalog model by name (`vgg16`) or a model YAML file by path."""
    if name_or_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"{path}: model file does not exist")
        text, where = path.read_text(), str(path)
    elif name_or_path in catalog_models():
        ref = resources.files("workloads") / "models" / f"{name_or_path}.yaml"
        text, where = ref.read_text(), f"workloads/models/{name_or_path}.yaml"
    else:
        raise unknown_name("model", name_or_path, catalog_models())
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"{where}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping with name, input_shape and layers")
    return parse_model(data, where)
