"""The plugin registries: entry points load eagerly on any first lookup, a name provided twice
is a one-line user error naming both providers, an unknown name lists the valid ones, names
come sorted, group names have no spaces, and the project's built-ins arrive by entry point.
Device kinds of catalog entries resolve through the `hardware` registry."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
import types
from collections.abc import Callable
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

import simulator.core.registry as registry_module
from hardware_models import catalog_io
from simulator.core import plugins
from simulator.core.errors import UserError
from simulator.core.registry import DuplicateRegistration, PluginLoadError, Registry

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_REGISTRIES = [r for r in plugins.ALL if r.builtins]
OUR_PACKAGES = ("simulator", "workloads", "hardware_models", "accelerators")


def _plugin_module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    vars(module).update(attrs)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def _entry_points(monkeypatch: pytest.MonkeyPatch, group: str, *specs: str) -> None:
    """Make `entry_points(group=GROUP)` return `NAME = VALUE` specs (no other group)."""
    eps = [EntryPoint(*(s.strip() for s in spec.split("=")), group) for spec in specs]
    monkeypatch.setattr(registry_module, "entry_points",
                        lambda group=None: [ep for ep in eps if ep.group == group])


def _fn_a() -> str:
    return "a"


def _fn_b() -> str:
    return "b"


LOOKUPS: dict[str, Callable[[Registry[Any]], Any]] = {
    "get": lambda r: r.get("first"),
    "names": lambda r: r.names(),
    "contains": lambda r: "first" in r,
    "iteration": lambda r: list(r),
    "len": lambda r: len(r),
    "getitem": lambda r: r["first"],
}


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
def test_any_first_lookup_loads_every_entry_point(monkeypatch, lookup):
    _plugin_module(monkeypatch, "regtest_plugin", other=_fn_b)
    _entry_points(monkeypatch, "simulator.test_eager", "second = regtest_plugin:other")
    reg: Registry[Any] = Registry("test_eager")
    reg.add("first", _fn_a)
    lookup(reg)
    assert reg.names() == ["first", "second"]
    assert reg.get("second") is _fn_b


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
def test_a_plugin_taking_an_existing_name_fails_in_every_lookup(monkeypatch, lookup):
    _plugin_module(monkeypatch, "regtest_plugin", clash=_fn_b)
    _entry_points(monkeypatch, "simulator.test_clash", "first = regtest_plugin:clash")
    reg: Registry[Any] = Registry("test_clash")
    reg.register("first")(_fn_a)
    with pytest.raises(DuplicateRegistration) as err:
        lookup(reg)
    message = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in message
    assert message == (f"test clash 'first' is provided twice: by {__name__}:_fn_a and by "
                       "regtest_plugin:clash")


def test_decorator_and_entry_point_of_the_same_object_is_no_conflict(monkeypatch):
    _plugin_module(monkeypatch, "regtest_plugin", same=_fn_a)
    _entry_points(monkeypatch, "simulator.test_same", "first = regtest_plugin:same")
    reg: Registry[Any] = Registry("test_same")
    reg.register("first")(_fn_a)
    assert reg.get("first") is _fn_a and reg.names() == ["first"]
    assert reg.provider("first") == f"{__name__}:_fn_a"


def test_two_decorators_of_different_objects_conflict():
    reg: Registry[Any] = Registry("test_twice")
    reg.register("x")(_fn_a)
    with pytest.raises(DuplicateRegistration, match=r"test twice 'x' is provided twice: by "
                       rf"{__name__}:_fn_a and by {__name__}:_fn_b"):
        reg.register("x")(_fn_b)


def test_an_object_without_a_name_is_provided_by_the_registering_module():
    reg: Registry[Any] = Registry("test_objects")
    reg.add("one", object())
    assert reg.provider("one") == f"{__name__}:one"


def test_unknown_name_lists_the_valid_ones_sorted(monkeypatch):
    _entry_points(monkeypatch, "simulator.test_unknown")
    reg: Registry[Any] = Registry("test_unknown")
    for name in ("zeta", "alpha", "mid"):
        reg.add(name, object())
    assert reg.names() == ["alpha", "mid", "zeta"] and list(reg) == reg.names()
    with pytest.raises(UserError, match=r"^unknown test unknown 'nope'; valid test unknown "
                                        r"names: alpha, mid, zeta$"):
        reg.get("nope")


def test_a_module_entry_point_must_register_its_name(monkeypatch):
    _plugin_module(monkeypatch, "regtest_empty")
    _entry_points(monkeypatch, "simulator.test_module", "lost = regtest_empty")
    with pytest.raises(PluginLoadError, match="module regtest_empty was imported but registers "
                                              "no test module 'lost'"):
        Registry("test_module").names()


def test_a_module_entry_point_that_registers_its_name(tmp_path, monkeypatch):
    host = _plugin_module(monkeypatch, "regtest_host", REG=Registry("test_module_ok"))
    (tmp_path / "regtest_registers.py").write_text(
        "import regtest_host\nFOUND = object()\nregtest_host.REG.add('found', FOUND)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "regtest_registers", raising=False)
    _entry_points(monkeypatch, "simulator.test_module_ok", "found = regtest_registers")
    assert host.REG.names() == ["found"]
    assert host.REG.get("found") is sys.modules["regtest_registers"].FOUND
    assert host.REG.provider("found") == "regtest_registers:found"


def test_a_plugin_that_fails_to_import_is_one_line(monkeypatch):
    _entry_points(monkeypatch, "simulator.test_broken", "gone = no_such_module_xyz:thing")
    with pytest.raises(PluginLoadError) as err:
        Registry("test_broken").names()
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("test broken plugin 'gone' (no_such_module_xyz:thing) "
                                     "could not be loaded: ModuleNotFoundError")


def test_a_lookup_during_the_import_of_a_plugin_module(tmp_path, monkeypatch):
    """A module that looks names up while it is imported, before defining its plugin: its
    entry point is loaded on a later lookup, not half-imported."""
    host = _plugin_module(monkeypatch, "regtest_host", REG=Registry("test_midimport"))
    (tmp_path / "regtest_mid.py").write_text(textwrap.dedent("""
        import regtest_host
        SEEN = regtest_host.REG.names()
        @regtest_host.REG.register("mid")
        def mid():
            return "mid"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "regtest_mid", raising=False)
    _entry_points(monkeypatch, "simulator.test_midimport", "mid = regtest_mid:mid")
    import regtest_mid  # the plugin module, imported directly first

    assert regtest_mid.SEEN == []
    assert host.REG.get("mid") is regtest_mid.mid and host.REG.names() == ["mid"]


def test_a_registry_of_built_ins_without_its_entry_points_says_to_reinstall(monkeypatch):
    _entry_points(monkeypatch, "simulator.test_stale")
    with pytest.raises(UserError, match="pip install -e ."):
        Registry("test_stale", builtins=True).names()


def test_no_space_in_any_group_name():
    with pytest.raises(ValueError, match="one word"):
        Registry("layer kind")
    for reg in plugins.ALL:
        assert reg.group == f"simulator.{reg.kind}" and not any(c.isspace() for c in reg.group)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    groups = {g for g in declared if g.startswith("simulator.")}
    assert groups == {r.group for r in BUILTIN_REGISTRIES}


@pytest.mark.parametrize("reg", BUILTIN_REGISTRIES, ids=lambda r: r.kind)
def test_every_built_in_is_declared_as_an_entry_point(reg):
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    ours = [n for n in reg.names() if reg.provider(n).split(".")[0] in OUR_PACKAGES]
    assert sorted(declared[reg.group]) == ours


def test_a_lookup_from_the_lowest_stage_sees_every_built_in():
    """A fresh interpreter that imports only simulator.core sees every built-in strategy,
    collective, device kind, ...: the registries imported their modules by entry point."""
    code = ("import json, sys; from simulator.core import plugins as p; "
            "print(json.dumps({r.group: r.names() for r in p.ALL if r.builtins}), "
            "'simulator.parallel.data' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    names, imported = out.stdout.rsplit(" ", 1)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    seen = json.loads(names)
    assert set(seen) == {g for g in declared if g.startswith("simulator.")}
    for group, eps in seen.items():
        assert set(declared[group]) <= set(eps), group
    assert imported.strip() == "True"


def test_optimizers_and_precisions_are_registries():
    from workloads.optimizers import OPTIMIZERS, get_optimizer
    from workloads.precision import PRECISIONS, get_precision

    assert OPTIMIZERS is plugins.optimizer and PRECISIONS is plugins.precision
    assert OPTIMIZERS["adam"] is get_optimizer("adam") and "sgd" in OPTIMIZERS
    assert list(PRECISIONS) == ["bf16", "fp16", "fp32", "fp32-strict", "tf32"]
    assert get_precision("fp16").grad_scaler
    with pytest.raises(UserError,
                       match="unknown optimizer 'lion'; valid optimizer names: adam, adamw, sgd"):
        get_optimizer("lion")


def test_a_catalog_kind_resolves_through_the_hardware_registry(tmp_path):
    spec = catalog_io.load_spec("h100-sxm")
    path = tmp_path / "my-h100.yaml"
    path.write_text(yaml_dump({**spec.model_dump(), "name": "my-h100"}))
    device = catalog_io.make_device(str(path))
    assert type(device) is plugins.hardware.get("gpu") and device.name == "my-h100"
    assert {"cpu", "gpu"} <= set(catalog_io.device_kinds())
    assert "ideal" in catalog_io.standalone_kinds() and "ideal" not in catalog_io.device_kinds()
    assert type(catalog_io.make_device("ideal")) is plugins.hardware.get("ideal")


@pytest.mark.parametrize("change, words", [
    ({"kind": "abacus"}, ["kind: must be ", "'cpu'", "'gpu'", "got 'abacus'"]),
    ({"sms": -1}, ["sms:", "greater than 0"]),
    ({"host_link": "pcie9"}, ["host_link: unknown link 'pcie9'", "pcie5-x16"]),
])
def test_a_bad_device_file_is_one_line_naming_file_and_field(tmp_path, change, words):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_dump({**catalog_io.load_spec("h100-sxm").model_dump(), **change}))
    with pytest.raises(UserError) as err:
        catalog_io.make_device(str(path))
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{path}: ")
    for word in words:
        assert word in str(err.value)


def yaml_dump(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data)
