"""libyaml's C loader and PyYAML's Python composer read every file alike: the same data,
the same line for every field, the same one-line error (tests/test_hostile_input.py and
tests/test_config.py run whole under each loader, through the `yaml_loader` fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core import yaml_source
from simulator.core.errors import UserError
from simulator.core.yaml_source import LOADER_ENV, libyaml_used, parse_yaml_text

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("experiments", "hardware_models", "workloads", "accelerators", "tests")
needs_libyaml = pytest.mark.skipif(not libyaml_used(), reason="no libyaml 0.2.5+ here")


def outcome(text: str, loader: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """(data, {field path: line}) of the text under `loader`, or its error line."""
    monkeypatch.setenv(LOADER_ENV, loader)
    try:
        source = parse_yaml_text(text, "t.yaml")
    except UserError as err:
        return ("error", str(err))
    return ("data", source.data, {path: source.line_of(path) for path in paths(source.data)})


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += paths(value, (*prefix, i))
    return found


@needs_libyaml
def test_the_c_loader_composes_where_libyaml_is(monkeypatch):
    used: list[str] = []
    original = yaml.CSafeLoader.get_single_node

    def spy(self):
        used.append("c")
        return original(self)
    monkeypatch.setattr(yaml.CSafeLoader, "get_single_node", spy)
    assert parse_yaml_text("a: [1, 2]\n", "t.yaml").data == {"a": [1, 2]}
    assert used == ["c"]
    monkeypatch.setenv(LOADER_ENV, "python")
    assert not libyaml_used()
    parse_yaml_text("a: [1, 2]\n", "t.yaml")
    assert used == ["c"]


@needs_libyaml
@pytest.mark.parametrize("path", sorted(p for folder in FOLDERS
                                        for p in (ROOT / folder).rglob("*.yaml")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_of_the_repository_reads_alike(path, monkeypatch):
    text = path.read_text()
    assert outcome(text, "libyaml", monkeypatch) == outcome(text, "python", monkeypatch)


LIMITS = {
    "flow nesting past the limit": "a: " + "[" * 70 + "]" * 70 + "\n",
    "flow nesting past libyaml's own limit": "[" * 1500 + "]" * 1500,
    "block nesting past the limit": "".join(" " * i + "a:\n" for i in range(70)) + " " * 70 + "1\n",
    "nodes past the limit": "a: [" + "1, " * yaml_source.MAX_NODES + "]\n",
    "alias bomb": "b0: &b0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]\n" for i in range(1, 7)),
    "duplicate key": "title: T\nx:\n  y: 1\n  y: 2\n",
    "alias in itself": "a: &a [1, *a]\n",
    "huge integer": "a: 1" + "0" * 60 + "\n",
    "subnormal float": "a: 1.0e-320\n",
    "syntax": "a: [1, 2\nb: 3\n",
    "tab indent": "a:\n\t- 1\n",
    "bad tag": "a: !!python/object:os.system x\n",
}


@needs_libyaml
@pytest.mark.parametrize("text", LIMITS.values(), ids=LIMITS.keys())
def test_limits_and_errors_are_the_python_composers_words(text, monkeypatch):
    c, python = outcome(text, "libyaml", monkeypatch), outcome(text, "python", monkeypatch)
    assert c == python
    assert c[0] == "error" and c[1].startswith("t.yaml:")


TOKENS = ["a", "b", ":", ": ", " ", "  ", "\n", "- ", "[", "]", "{", "}", ",", "&a ", "*a",
          "&b ", "*b", "<<: ", "!!int ", "!!float ", "!!str ", "!!set ", "!", "'", '"', "\\",
          "#", "---\n", "...\n", "|", ">", "? ", "?", "\t", "1", "0x", "_", "9" * 45,
          "1.0e-320", ".inf", ".nan", "~", "null", "yes", "2020-13-45", "\x85", "é", "\ufeff",
          "%YAML 1.1\n", "@", "`"]


@needs_libyaml
@settings(max_examples=500, deadline=None)
@given(text=st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
def test_fuzz_both_loaders_agree(text):
    with pytest.MonkeyPatch.context() as patch:
        assert outcome(text, "libyaml", patch) == outcome(text, "python", patch)
