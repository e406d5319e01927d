"""The catalog: device and link specs (YAML, package data), calibration profiles, and the
factory that turns a name into a ready device model.

`make_device("h100-sxm")` uses the device's calibrated profile when the catalog has one;
otherwise it borrows the efficiencies of the reference device of the same kind
('transferred'), and `spec_sheet=True` uses peak numbers only.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hardware_models.cpu import CPU
from hardware_models.gpu import GPU
from hardware_models.ideal import IdealDevice
from hardware_models.links import Link
from hardware_models.profile import Profile, for_framework, spec_sheet_profile
from hardware_models.spec import CPUSpec, GPUSpec, LinkSpec
from simulator.core.errors import UserError, unknown_name

REFERENCE_PROFILE = {"gpu": "h100-sxm", "cpu": "epyc-zen4-2vcpu"}
BUILTIN = ("ideal",)


def _folder(sub: str) -> Any:
    return resources.files("hardware_models") / "catalog" / sub


def _names(sub: str) -> list[str]:
    folder = _folder(sub)
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def device_names() -> list[str]:
    return _names("devices")


def link_names() -> list[str]:
    return _names("links")


def read_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"{where}: not valid YAML: {str(err).splitlines()[0]}") from None


def validation_message(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    return f"{where}: {field}: {first['msg']}"


@lru_cache(maxsize=None)
def load_spec(name: str) -> CPUSpec | GPUSpec:
    if name not in device_names():
        raise unknown_name("hardware", name, device_names() + list(BUILTIN))
    where = f"hardware_models/catalog/devices/{name}.yaml"
    return parse_spec(read_yaml((_folder("devices") / f"{name}.yaml").read_text(), where), where)


def parse_spec(data: Any, where: str) -> CPUSpec | GPUSpec:
    kind = data.get("kind") if isinstance(data, dict) else None
    model = {"cpu": CPUSpec, "gpu": GPUSpec}.get(str(kind))
    if model is None:
        raise UserError(f"{where}: kind: must be 'cpu' or 'gpu', got {kind!r}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UserError(validation_message(err, where)) from None


@lru_cache(maxsize=None)
def load_link(name: str) -> Link:
    if name not in link_names():
        raise unknown_name("link", name, link_names())
    where = f"hardware_models/catalog/links/{name}.yaml"
    data = read_yaml((_folder("links") / f"{name}.yaml").read_text(), where)
    try:
        spec = LinkSpec.model_validate(data)
    except ValidationError as err:
        raise UserError(validation_message(err, where)) from None
    fitted = _folder("link_profiles") / f"{name}.yaml"
    if not fitted.is_file():
        return Link(spec)
    prof = read_yaml(fitted.read_text(), f"hardware_models/catalog/link_profiles/{name}.yaml")
    return Link(spec, float(prof["efficiency"]), float(prof["latency_s"]), "calibrated")


def load_profile_file(path: Path) -> Profile:
    if not path.is_file():
        raise UserError(f"{path}: profile file does not exist")
    data = read_yaml(path.read_text(), str(path))
    try:
        return Profile.model_validate(data)
    except ValidationError as err:
        raise UserError(validation_message(err, str(path))) from None


@lru_cache(maxsize=None)
def catalog_profile(name: str) -> Profile | None:
    ref = _folder("profiles") / f"{name}.yaml"
    if not ref.is_file():
        return None
    data = read_yaml(ref.read_text(), f"hardware_models/catalog/profiles/{name}.yaml")
    return Profile.model_validate(data)


def default_profile(spec: CPUSpec | GPUSpec, framework: str = "pytorch") -> Profile:
    """Calibrated if the catalog has it (`NAME.FRAMEWORK.yaml` first, for a library's own
    kernels, then `NAME.yaml`), else transferred from the kind's reference device; per-kernel
    rates only when predicting the library they were measured with."""
    own = catalog_profile(f"{spec.name}.{framework}") or catalog_profile(spec.name)
    if own is not None:
        return for_framework(own, framework)
    ref = catalog_profile(REFERENCE_PROFILE[spec.kind])
    if ref is None:
        return spec_sheet_profile(spec.name)
    ref = for_framework(ref, framework)
    keep = {"launch_s": None, "launch_s_by_kernel": {}, "autograd_node_s": 0.0,
            "copy_overhead_s": ref.copy_overhead_s, "threads": None}
    return ref.model_copy(update={"device": spec.name, "origin": f"transferred from {ref.device}",
                                  **keep})


def build_device(spec: CPUSpec | GPUSpec, profile: Profile) -> Any:
    if isinstance(spec, GPUSpec):
        return GPU(spec, profile, load_link(spec.host_link))
    return CPU(spec, profile)


def make_device(name: str, spec_sheet: bool = False, framework: str = "pytorch") -> Any:
    """A device model from a catalog name, 'ideal', or a profile YAML path; `framework` is
    the library whose kernels run (pytorch by default; cupy or numpy to match measurements)."""
    if name == "ideal":
        return IdealDevice()
    if name.endswith((".yaml", ".yml")):
        profile = for_framework(load_profile_file(Path(name)), framework)
        return build_device(load_spec(profile.device), profile)
    spec = load_spec(name)
    if spec_sheet:
        return build_device(spec, spec_sheet_profile(name))
    return build_device(spec, default_profile(spec, framework))
