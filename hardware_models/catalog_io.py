"""The catalog: device and link specs (YAML, package data), calibration profiles, and the
factory that turns a name into a ready device model.

`make_device("h100-sxm")` uses the device's calibrated profile when the catalog has one;
otherwise it borrows the efficiencies of the reference device of the same kind
('transferred'), and `spec_sheet=True` uses peak numbers only.

A catalog entry's `kind:` names a device kind of the `hardware` registry (cpu, gpu, or a
plugin's): the kind's class validates the entry with its `spec_model` and is built from it
(docs/plugins.md). A device YAML may also be given by path (`--hardware my-tpu.yaml`), as
may a calibrated profile. A kind without a `spec_model` (ideal) is a device by its name.
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hardware_models.host import catalog_host, with_host
from hardware_models.links import Link
from hardware_models.profile import Profile, for_framework, spec_sheet_profile
from hardware_models.registry import hardware
from hardware_models.spec import LinkSpec
from simulator.core.errors import UserError, unknown_name
from simulator.core.listing import yaml_names
from simulator.core.yaml_source import parse_yaml_text, read_text_bounded

# the profile a device of a kind borrows (per framework where a library's own was fitted: a
# numpy-calibrated CPU profile never stands for PyTorch's oneDNN kernels, nor the reverse)
REFERENCE_PROFILE = {"gpu": "h100-sxm", "cpu": "xeon-emr-16vcpu.pytorch",
                     "cpu.numpy": "epyc-zen4-2vcpu.numpy"}
BUILTIN = ("ideal",)  # the built-in kinds that are devices by name (see standalone_kinds)
YAML_SUFFIXES = (".yaml", ".yml")
Spec = Any  # a validated catalog entry: CPUSpec, GPUSpec or a plugin kind's spec model


@cache
def _folder(sub: str) -> Any:
    return resources.files("hardware_models") / "catalog" / sub


def _names(sub: str) -> list[str]:
    return list(yaml_names(_folder(sub)))


def _device_files() -> dict[str, tuple[Any, str]]:
    """Every catalog device: name -> (its file, the name errors show). The catalog's own
    folder first, then each device kind's `catalog` folder (a plugin's entries)."""
    folders = [(_folder("devices"), "hardware_models/catalog/devices")]
    for kind in hardware.names():
        extra = getattr(hardware.get(kind), "catalog", None)
        if extra is not None:  # yaml_names: () for a folder that is not there
            folders.append((extra, f"{kind} catalog {extra}"))
    return _files_in(tuple((folder, where, yaml_names(folder)) for folder, where in folders))


@lru_cache(maxsize=16)
def _files_in(listed: tuple[tuple[Any, str, tuple[str, ...]], ...]) -> dict[str, tuple[Any, str]]:
    files: dict[str, tuple[Any, str]] = {}
    for folder, where, names in listed:
        for name in names:
            if name not in files:
                files[name] = (folder / f"{name}.yaml", f"{where}/{name}.yaml"
                               if "catalog " not in where else str(folder / f"{name}.yaml"))
    return files


def device_names() -> list[str]:
    return sorted(_device_files())  # a copy: the cached listing is never handed out


def is_device_name(name: str) -> bool:
    """Whether the catalog has a device `name` (`name in device_names()`, without the copy)."""
    return name in _device_files()


def link_names() -> list[str]:
    return _names("links")


def read_yaml(text: str, where: str) -> Any:
    """Catalog and profile YAML, through the one bounded reader (simulator.core.yaml_source)."""
    return parse_yaml_text(text, where, "expected a catalog entry or a profile").data


def validation_message(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    return f"{where}: {field}: {first['msg']}"


def spec_model(kind: str) -> Any:
    """The pydantic model that validates a catalog entry of device kind `kind`, or None."""
    return getattr(hardware.get(kind), "spec_model", None)


def device_kinds() -> list[str]:
    """The device kinds a catalog entry may name in `kind:` (those with a spec model)."""
    return [kind for kind in hardware.names() if spec_model(kind) is not None]


def standalone_kinds() -> list[str]:
    """Device kinds that are devices by their own name, built without a spec (ideal)."""
    return [kind for kind in hardware.names() if spec_model(kind) is None]


def _either(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return " or ".join(quoted) if len(quoted) < 3 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


@cache
def load_spec(name: str) -> Spec:
    if name not in device_names():
        raise unknown_name("hardware", name, device_names() + standalone_kinds())
    path, where = _device_files()[name]
    return parse_spec(read_yaml(path.read_text(), where), where)


def parse_spec(data: Any, where: str) -> Spec:
    """Validate one catalog entry with its kind's spec model; errors are one line."""
    kind = data.get("kind") if isinstance(data, dict) else None
    kinds = device_kinds()
    if not isinstance(kind, str) or kind not in kinds:
        raise UserError(f"{where}: kind: must be {_either(kinds)}, got {kind!r}")
    try:
        spec = spec_model(kind).model_validate(data)
    except ValidationError as err:
        raise UserError(validation_message(err, where)) from None
    host = getattr(spec, "host_link", None)
    if isinstance(host, str) and host not in link_names():
        raise UserError(f"{where}: host_link: {unknown_name('link', host, link_names())}")
    return spec


@cache
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


def _read_file(path: Path, what: str) -> Any:
    if not path.is_file():
        raise UserError(f"{path}: {what} file does not exist")
    return read_yaml(read_text_bounded(path), str(path))


def _profile(data: Any, where: str) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as err:
        raise UserError(validation_message(err, where)) from None


def load_profile_file(path: Path) -> Profile:
    return _profile(_read_file(path, "profile"), str(path))


def is_spec_data(data: Any) -> bool:
    """A device entry has `kind:`; a calibrated profile has `device:` instead."""
    return isinstance(data, dict) and "kind" in data and "device" not in data


def load_device_file(path: Path) -> Spec:
    """A device entry (of any registered kind) from a YAML file outside the catalog."""
    return parse_spec(_read_file(path, "device"), str(path))


@cache
def catalog_profile(name: str) -> Profile | None:
    ref = _folder("profiles") / f"{name}.yaml"
    if not ref.is_file():
        return None
    data = read_yaml(ref.read_text(), f"hardware_models/catalog/profiles/{name}.yaml")
    return Profile.model_validate(data)


def default_profile(spec: Spec, framework: str = "pytorch") -> Profile:
    """Calibrated if the catalog has it (`NAME.FRAMEWORK.yaml` first, for a library's own
    kernels, then `NAME.yaml`), else transferred from the kind's reference device; per-kernel
    rates only when predicting the library they were measured with; a GPU's host terms from
    the framework's host profile (`hardware_models.host`) where the catalog has one."""
    host = catalog_host(framework) if spec.kind == "gpu" else None
    return with_host(device_profile(spec, framework), host)


def device_profile(spec: Spec, framework: str = "pytorch") -> Profile:
    """The device's own profile (calibrated or transferred), before any host profile."""
    own = catalog_profile(f"{spec.name}.{framework}") or catalog_profile(spec.name)
    if own is not None:
        return for_framework(own, framework)
    ref = catalog_profile(REFERENCE_PROFILE.get(f"{spec.kind}.{framework}",
                                                REFERENCE_PROFILE.get(spec.kind, "")))
    if ref is None:
        return spec_sheet_profile(spec.name)
    ref = for_framework(ref, framework)
    # the host terms belong to the reference's host machine, not to its device: dropped here
    keep: dict[str, Any] = {"launch_s": None, "launch_s_by_kernel": {}, "autograd_node_s": 0.0,
                            "copy_overhead_s": ref.copy_overhead_s, "threads": None}
    return ref.model_copy(update={"device": spec.name, "origin": f"transferred from {ref.device}",
                                  **keep})


def build_device(spec: Spec, profile: Profile) -> Any:
    """The device of `spec`'s kind: `Kind(spec, profile)`, plus the host link when the spec
    names one (`host_link:`, a catalog link)."""
    cls = hardware.get(spec.kind)
    host = getattr(spec, "host_link", None)
    if isinstance(host, str):
        return cls(spec, profile, load_link(host))
    return cls(spec, profile)


def _from_spec(spec: Spec, spec_sheet: bool, framework: str) -> Any:
    if spec_sheet:
        return build_device(spec, spec_sheet_profile(spec.name))
    return build_device(spec, default_profile(spec, framework))


def profile_spec(profile: Profile, path: Path) -> Spec:
    """The device entry a profile read from `path` is of: its `device_file` (relative to the
    profile) where it names one, else the catalog's `device`."""
    if profile.device_file is None:
        return load_spec(profile.device)
    entry = path.parent / profile.device_file
    if not entry.is_file():
        raise UserError(f"{path}: device_file: {entry} does not exist (the device entry "
                        "`calibrate` wrote beside this profile, by path relative to it)")
    spec = load_device_file(entry)
    if spec.name != profile.device:
        raise UserError(f"{path}: device: '{profile.device}', but its device_file {entry} "
                        f"is the entry of '{spec.name}'")
    return spec


def _from_file(path: Path, spec_sheet: bool, framework: str) -> Any:
    """A device YAML (`kind:`) or a calibrated profile YAML (`device:` a catalog name, or
    the entry named by its `device_file`)."""
    data = _read_file(path, "device or profile")
    if is_spec_data(data):
        return _from_spec(parse_spec(data, str(path)), spec_sheet, framework)
    profile = for_framework(_profile(data, str(path)), framework)
    spec = profile_spec(profile, path)
    if spec_sheet:
        return build_device(spec, spec_sheet_profile(spec.name))
    return build_device(spec, profile)


def make_device(name: str, spec_sheet: bool = False, framework: str = "pytorch") -> Any:
    """A device model from a catalog name, a device or profile YAML path, or a standalone
    kind ('ideal'); `framework` is the library whose kernels run (pytorch by default; cupy
    or numpy to match measurements)."""
    if name.endswith(YAML_SUFFIXES):
        return _from_file(Path(name), spec_sheet, framework)
    if not is_device_name(name) and name in standalone_kinds():
        return hardware.get(name)()
    return _catalog_device(name, spec_sheet, framework)


@cache
def _catalog_device(name: str, spec_sheet: bool, framework: str) -> Any:
    """One device model per catalog name and options: built of what is itself read once
    (`load_spec`, `catalog_profile`, `load_link`), and never changed after it is built
    (a CPU on fewer threads, a straggler: new objects), so every sweep point shares it."""
    return _from_spec(load_spec(name), spec_sheet, framework)
