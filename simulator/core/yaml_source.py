"""The one YAML reader: a file read together with its node tree, so errors can say on which
line a field is, and bounded so that no file can make it hang, crash or fill memory.

`read_yaml_source(path)` reads a file (at most `MAX_FILE_BYTES`, UTF-8), parses it once into
plain data *and* keeps the composed node tree; `YamlSource.line_of(path)` walks that tree
along a field path (mapping keys and list indices, as pydantic reports them) and returns the
1-based line of the deepest node found. Merge keys (`<<: *anchor`) resolve to the anchor's
lines, where the value is written.

Before anything is built from the tree, every node is checked once (an alias is walked once,
however often it is used): nesting at most `MAX_DEPTH` levels and at most `MAX_NODES` nodes,
both counted with aliases expanded (an alias bomb is refused, not expanded); no alias inside
the node it names; no duplicate key in one mapping (PyYAML would keep the last silently);
integers at most `MAX_INT` in size; floats finite and not subnormal. Every problem is one
`UserError` line: `FILE:LINE: field.path: what is wrong` (docs/reliability.md, "Hostile input").

Where PyYAML has libyaml (0.2.5 or later, which refuses flow nesting past 1,000 levels) the
tree is composed by its C loader, about ten times faster, and checked for the composer's
limits without recursion; a file the C loader refuses or that passes a limit is read again
by the Python composer, so that every error has the same words whichever loader is present
(`SIMULATOR_YAML_LOADER=python` takes the Python one always).
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from simulator.core.errors import PathPart, UserError, format_path, shown

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_INT", "MAX_NODES", "PathPart", "YamlSource",
           "format_path", "parse_yaml_text", "read_text_bounded", "read_yaml_source"]

MAX_FILE_BYTES = 1 << 20  # 1 MiB: ~90x the largest file in the repo (12 KB)
MAX_DEPTH = 64  # levels of nested mappings and lists (aliases expanded); files use < 10
MAX_NODES = 50_000  # scalars, lists and mappings (aliases expanded); files use < 1,500
MAX_INT = 2**53  # larger integers are not exact as floats (or as numbers in JSON)
MAX_INT_CHARS = 40  # an integer written longer than this is too large (checked before int())
INT_TAG, FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
BUILT_SCALAR_TAGS = (INT_TAG, FLOAT_TAG, "tag:yaml.org,2002:timestamp")  # built while checked
EMPTY_EXPERIMENT = "an experiment needs at least 'title' and 'scenarios'"
LOADER_ENV = "SIMULATOR_YAML_LOADER"  # "python": never libyaml's C loader
LIBYAML_MIN = (0, 2, 5)  # the first libyaml with a nesting limit of its own
# what libyaml reads otherwise than PyYAML's scanner, found by tests/test_yaml_loaders.py's
# fuzz (read by the Python composer, so that each reads as it did, on the same lines): a
# tab, a tag (`!`), a `?` (a complex key; PyYAML ends a plain scalar at one in a flow
# collection), a byte-order mark or a Unicode line break anywhere, a document marker
# (`---`, `...`), a block scalar's indicator followed by a comment without a space
PYTHON_ONLY = re.compile("[\t!?\ufeff\x85\u2028\u2029]|---|[.][.][.]|[|>][-+0-9]*#")


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


def _located(where: str, mark: Any, path: Sequence[PathPart], what: str) -> UserError:
    line = f":{mark.line + 1}" if mark is not None else ""
    field = format_path(path)
    if len(path) > 8:  # a path 64 levels deep: its start and its depth
        field = f"{format_path(path[:4])}...({len(path)} levels)"
    return UserError(f"{where}{line}: {field}: {what}")


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer stops past MAX_DEPTH levels or MAX_NODES nodes (PyYAML's
    composer recurses once per level: 10,000 levels would be a RecursionError)."""

    def __init__(self, text: str, where: str) -> None:
        super().__init__(text)
        self.where, self.nodes = where, 0
        self.path: list[PathPart | None] = []  # keys and indices down to the node composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        part = index if isinstance(index, int) else (  # a key (index None) is its mapping's
            index.value if isinstance(index, yaml.ScalarNode) else None)
        self.path.append(part)
        self.nodes += 1
        if len(self.path) > MAX_DEPTH:
            raise self._limit(f"nested deeper than {MAX_DEPTH} levels (the limit of this reader)")
        if self.nodes > MAX_NODES:
            raise self._limit(f"more than {MAX_NODES:,} YAML nodes (the limit of this reader)")
        try:
            return super().compose_node(parent, index)
        finally:
            self.path.pop()

    def _limit(self, what: str) -> UserError:
        path = [part for part in self.path[1:] if part is not None]
        return _located(self.where, self.peek_event().start_mark, path, what)


class _TreeCheck:
    """One walk over the composed tree; each node is visited once, aliases are counted."""

    def __init__(self, loader: Any, where: str) -> None:
        self.loader, self.where = loader, where
        self.done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, depth)
        self.open: set[int] = set()  # nodes on the current path (an alias to one: a cycle)

    def error(self, node: yaml.Node, path: Sequence[PathPart], what: str) -> UserError:
        return _located(self.where, node.start_mark, path, what)

    def visit(self, node: yaml.Node, path: tuple[PathPart, ...]) -> tuple[int, int]:
        """(nodes, depth) of `node` with aliases expanded; raises past the limits."""
        if id(node) in self.open:
            raise self.error(node, path, "an alias refers to a list or mapping that contains "
                             "it (a recursive structure); write the value out")
        size, depth = self.done.get(id(node)) or self._first_visit(node, path)
        if len(path) + depth > MAX_DEPTH:
            raise self.error(node, path, f"nested deeper than {MAX_DEPTH} levels with its "
                             "aliases expanded (the limit of this reader)")
        return size, depth

    def _first_visit(self, node: yaml.Node, path: tuple[PathPart, ...]) -> tuple[int, int]:
        if isinstance(node, yaml.ScalarNode):
            self.scalar(node, path)
            self.done[id(node)] = (1, 1)
            return 1, 1
        self.open.add(id(node))
        size, depth = 1, 0
        for child, child_path in self.children(node, path):
            child_size, child_depth = self.visit(child, child_path)
            size, depth = size + child_size, max(depth, child_depth)
            if size > MAX_NODES:
                raise self.error(node, path, f"more than {MAX_NODES:,} YAML nodes with "
                                 "aliases expanded (an alias bomb?); the limit of this reader")
        self.open.discard(id(node))
        self.done[id(node)] = (size, depth + 1)
        return size, depth + 1

    def children(self, node: yaml.Node,
                 path: tuple[PathPart, ...]) -> list[tuple[yaml.Node, tuple[PathPart, ...]]]:
        if isinstance(node, yaml.SequenceNode):
            return [(item, (*path, i)) for i, item in enumerate(node.value)]
        found, seen = [], set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            if isinstance(key, yaml.ScalarNode) and name != "<<":
                if name in seen:  # key first, then the field: the wording this error has had
                    raise UserError(f"{self.where}:{key.start_mark.line + 1}: duplicate key "
                                    f"{shown(name)} at {format_path((*path, name))} (each "
                                    "key may appear once in a mapping)")
                seen.add(name)
            found += [(key, (*path, name)), (value, (*path, name))]
        return found

    def scalar(self, node: yaml.ScalarNode, path: tuple[PathPart, ...]) -> None:
        """Integers bounded and floats finite, before anything downstream computes with them."""
        if node.tag == INT_TAG and len(node.value) > MAX_INT_CHARS:
            raise self.error(node, path, f"integer too large ({len(node.value)} characters); "
                             f"integers must be at most 2**53 ({MAX_INT:,}) in size")
        if node.tag not in BUILT_SCALAR_TAGS:
            return
        try:
            value = self.loader.construct_object(node)
        except (ValueError, TypeError, AttributeError, LookupError, ArithmeticError):
            kind = "a date" if node.tag not in (INT_TAG, FLOAT_TAG) else "a number"
            raise self.error(node, path, f"{shown(node.value)} is not {kind}") from None
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise self.error(node, path, f"integer too large, got {shown(value)}; integers "
                             f"must be at most 2**53 ({MAX_INT:,}) in size")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(node, path, f"must be a finite number, got {node.value}")
        if isinstance(value, float) and 0 < abs(value) < sys.float_info.min:
            raise self.error(node, path, f"{node.value} is below the smallest normal float "
                             f"({sys.float_info.min:.3g}); write 0 or a larger number")


def _first_non_printable(text: str, where: str) -> None:
    """NUL, ESC and other control characters, which YAML forbids, named with their line."""
    found = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if found is not None:
        pos = found.start()
        line, column = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        raise UserError(f"{where}:{line}: not valid YAML: control character "
                        f"{shown(found.group())} at column {column}; YAML allows tabs, "
                        "line breaks and printable characters only")


def libyaml_used() -> bool:
    """Whether files are composed by libyaml's C loader (see the module docstring)."""
    if os.environ.get(LOADER_ENV) == "python" or not getattr(yaml, "__with_libyaml__", False):
        return False
    from yaml import _yaml  # type: ignore[attr-defined]

    return tuple(_yaml.get_version()) >= LIBYAML_MIN


class _ReadAgain(Exception):
    """The C loader's tree is past a limit of the Python composer."""


# what the C loader's path may raise for a file the Python composer then reads again, so
# that it says what is wrong in its own words (libyaml's differ)
C_PATH_FAILURES = (_ReadAgain, UserError, yaml.YAMLError, ValueError, TypeError,
                   AttributeError, LookupError, ArithmeticError, RecursionError)


def _within_composer_limits(root: yaml.Node) -> bool:
    """Whether the Python composer would compose the tree without passing MAX_DEPTH levels
    or MAX_NODES nodes (an alias one node); a walk without recursion, each node once."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    count = 0
    while stack:
        node, level = stack.pop()
        count += 1
        if level > MAX_DEPTH or count > MAX_NODES:
            return False
        if id(node) in seen:  # an alias: one node where it is written
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack += [(item, level + 1) for item in node.value]
        elif isinstance(node, yaml.MappingNode):
            stack += [(part, level + 1) for pair in node.value for part in pair]
    return True


def _compose_c(text: str, where: str) -> tuple[yaml.Node | None, Any]:
    loader = yaml.CSafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        if not _within_composer_limits(root):
            raise _ReadAgain
        _TreeCheck(loader, where).visit(root, ())
        return root, loader.construct_document(root)
    finally:
        loader.dispose()


def _compose(text: str, where: str) -> tuple[yaml.Node | None, Any]:
    """The checked node tree and its data, or None for an empty document."""
    if libyaml_used() and PYTHON_ONLY.search(text) is None:
        try:
            return _compose_c(text, where)
        except C_PATH_FAILURES:
            pass
    loader = _BoundedLoader(text, where)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _TreeCheck(loader, where).visit(root, ())
        return root, loader.construct_document(root)
    finally:
        loader.dispose()


def parse_yaml_text(text: str, where: str, empty: str = EMPTY_EXPERIMENT) -> YamlSource:
    """Parse YAML text; syntax errors and limits become one line with the line number.
    `empty` says what the file should hold, for the error about an empty one."""
    if len(text) > MAX_FILE_BYTES:
        raise UserError(f"{where}: {len(text):,} characters; YAML text is limited to "
                        f"{MAX_FILE_BYTES:,}")
    _first_non_printable(text, where)
    try:
        root, data = _compose(text, where)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = err.problem or err.context or "syntax error"
        raise UserError(f"{where}{line}: not valid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise UserError(f"{where}: not valid YAML: {str(err).splitlines()[0]}") from None
    except (ValueError, TypeError, AttributeError, LookupError, ArithmeticError) as err:  # !!tag
        raise UserError(f"{where}: not valid YAML: a value cannot be read "
                        f"({type(err).__name__}: {err})") from None
    if root is None:
        raise UserError(f"{where}: the file is empty; {empty}")
    return YamlSource(where, data, root)


def read_text_bounded(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`; any problem is one line."""
    where = str(path)
    limit = f"{max_bytes:,} bytes ({max_bytes / 2**20:g} MiB)"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UserError(f"{where}: file does not exist") from None
    except OSError as err:
        raise UserError(f"{where}: cannot be read: {err.strerror or err}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{where}: is not a file (it is a directory)")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{where}: is not a file (a device, pipe or socket)")
    if info.st_size > max_bytes:
        raise UserError(f"{where}: {info.st_size:,} bytes; files are limited to {limit}")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise UserError(f"{where}: cannot be read: {err.strerror or err}") from None
    if len(data) > max_bytes:
        raise UserError(f"{where}: files are limited to {limit}")
    return _decoded(data, where)


def _decoded(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - data.rfind(b"\n", 0, err.start)
        raise UserError(f"{where}:{line}: not valid UTF-8: byte 0x{data[err.start]:02x} at "
                        f"column {column}; save the file as UTF-8") from None


def read_yaml_source(path: Path, empty: str = EMPTY_EXPERIMENT) -> YamlSource:
    """Read and parse a YAML file; a missing, unreadable or hostile file is a UserError."""
    return parse_yaml_text(read_text_bounded(Path(path)), str(path), empty)
