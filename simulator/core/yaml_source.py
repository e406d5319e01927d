"""A YAML file read together with its node tree, so errors can say on which line a field is.

`read_yaml_source(path)` parses a file once into plain data *and* keeps the composed node
tree; `YamlSource.line_of(path)` walks that tree along a field path (mapping keys and list
indices, as pydantic reports them) and returns the 1-based line of the deepest node found.
Merge keys (`<<: *anchor`) resolve to the anchor's lines, where the value is written.
Duplicate keys in one mapping, which PyYAML would silently collapse, are an error here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from simulator.core.errors import UserError

PathPart = str | int


def format_path(path: Sequence[PathPart]) -> str:
    """`("scenarios", 1, "workload", "batch")` -> `scenarios[1].workload.batch`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


@dataclass
class YamlSource:
    """The parsed data of one YAML file, its node tree, and the name to show in errors."""

    where: str
    data: Any
    root: yaml.Node

    def line_of(self, path: Sequence[PathPart]) -> int:
        """Line (1-based) of the value at `path`, or of the nearest enclosing node found."""
        node = self.root
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1

    def error(self, path: Sequence[PathPart], what: str) -> UserError:
        """One-line error: `file:line: field.path: what`."""
        return UserError(f"{self.where}:{self.line_of(path)}: {format_path(path)}: {what}")


def _child(node: yaml.Node, part: PathPart) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        return node.value[part] if 0 <= part < len(node.value) else None
    if isinstance(node, yaml.MappingNode):
        # After construction merged pairs come first and explicit keys last: take the last.
        found = None
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                found = value
        return found
    return None


def _check_duplicate_keys(node: yaml.Node, where: str) -> None:
    """PyYAML keeps the last of two equal keys silently; a typo-prone config should not."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                if key.value in seen:
                    raise UserError(f"{where}:{key.start_mark.line + 1}: duplicate key "
                                    f"'{key.value}' in one mapping (each key may appear once)")
                seen.add(key.value)
            _check_duplicate_keys(value, where)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, where)


def parse_yaml_text(text: str, where: str) -> YamlSource:
    """Parse YAML text; syntax errors become one line with the line number of the problem."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise UserError(f"{where}: the file is empty; an experiment needs at least "
                            "'title' and 'scenarios'")
        _check_duplicate_keys(root, where)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = err.problem or err.context or "syntax error"
        raise UserError(f"{where}{line}: not valid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise UserError(f"{where}: not valid YAML: {str(err).splitlines()[0]}") from None
    finally:
        loader.dispose()
    return YamlSource(where, data, root)


def read_yaml_source(path: Path) -> YamlSource:
    """Read and parse a YAML file; a missing or unreadable file is a UserError."""
    where = str(path)
    if not path.exists():
        raise UserError(f"{where}: file does not exist")
    if not path.is_file():
        raise UserError(f"{where}: is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{where}: cannot be read: {err}") from None
    return parse_yaml_text(text, where)
