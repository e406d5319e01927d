"""One Registry type for every kind of plugin, filled by a decorator or by entry points.

A `Registry("strategy")` maps names to plugins and reads the entry-point group
`simulator.strategy` (kind names have no spaces; `docs/plugins.md` lists the groups). The
entry points of every installed package, the project's own built-ins included, are loaded
eagerly on the first lookup of any kind (`get`, `names`, `in`, iteration), so every lookup
sees the same plugins. An entry point names an object (`data = simulator.parallel.data:fn`)
or a module that registers the name itself when imported (`allreduce =
simulator.parallel.collectives`). A name provided by two different objects is a one-line
`UserError` naming both providers; the same object arriving by decorator and by entry point
is not a conflict. An unknown name lists the valid ones.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from simulator.core.errors import UserError, unknown_name

T = TypeVar("T")
OWN_DISTRIBUTION = "simulator"  # the project's own package: its built-ins load first


class DuplicateRegistration(UserError):
    """Two different plugins provide the same name."""


class PluginLoadError(UserError):
    """An installed plugin's entry point could not be imported or did not register its name."""


def provider_of(item: Any, name: str, depth: int = 2) -> str:
    """`module:qualname` of a class or function, else `caller_module:name`."""
    module, qualname = getattr(item, "__module__", None), getattr(item, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}:{qualname}"
    return f"{sys._getframe(depth).f_globals.get('__name__', '?')}:{name}"


def _mid_import(module: str) -> bool:
    """Whether `module` or a package above it is being imported right now."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        spec = getattr(sys.modules.get(".".join(parts[:i])), "__spec__", None)
        if getattr(spec, "_initializing", False):
            return True
    return False


def _load_order(ep: EntryPoint) -> tuple[int, str, str]:
    dist = ep.dist.name if ep.dist is not None else ""
    return (0 if dist == OWN_DISTRIBUTION else 1, dist, ep.name)


class Registry(Generic[T]):
    """A read-only name -> plugin mapping for one kind of plugin, plus `register`/`add`."""

    def __init__(self, kind: str, builtins: bool = False) -> None:
        if not kind or any(c.isspace() for c in kind):
            raise ValueError(f"registry kind {kind!r} must be one word: it names the "
                             f"entry-point group simulator.{kind}")
        self.kind, self.group, self.builtins = kind, f"simulator.{kind}", builtins
        self.label = kind.replace("_", " ")  # as messages say it: "layer kind"
        self._items: dict[str, T] = {}
        self._providers: dict[str, str] = {}
        self._pending: list[EntryPoint] | None = None  # None: entry points not read yet
        self._loading = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@strategy.register("data")` above a class or function."""

        def add(item: T) -> T:
            self.add(name, item, provider_of(item, name))
            return item

        return add

    def add(self, name: str, item: T, provider: str | None = None) -> None:
        """Register `item` as `name`; a different item under a taken name is an error."""
        provider = provider or provider_of(item, name)
        if name in self._items and self._items[name] is not item:
            raise DuplicateRegistration(f"{self.label} '{name}' is provided twice: by "
                                        f"{self._providers[name]} and by {provider}")
        self._items.setdefault(name, item)
        self._providers.setdefault(name, provider)

    def get(self, name: str, field: str | None = None) -> T:
        """The plugin `name`; an unknown name is a user error listing the valid ones,
        prefixed with the `field` it was given in (e.g. "parallel") where there is one."""
        self._ensure_loaded()
        if name not in self._items:
            err = unknown_name(self.label, name, list(self._items))
            raise UserError(f"{field}: {err}") if field else err
        return self._items[name]

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._items)

    def provider(self, name: str) -> str:
        """Where `name` comes from (`module:object` or the entry point's value)."""
        self.get(name)
        return self._providers[name]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name]) for name in self.names()]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r})"

    def _ensure_loaded(self) -> None:
        """Load every entry point of the group once; re-entrant lookups (a plugin module
        looking names up while it is imported) see what is registered so far, and an entry
        point whose module is still being imported is loaded on a later lookup."""
        if self._pending is None:
            self._pending = sorted(entry_points(group=self.group), key=_load_order)
            self._check_builtins(self._pending)
        if not self._pending or self._loading:
            return
        self._loading = True
        try:
            later = [ep for ep in self._pending if _mid_import(ep.module)]
            for ep in self._pending:
                if ep not in later:
                    self._load(ep)
            self._pending = later
        finally:
            self._loading = False

    def _check_builtins(self, eps: list[EntryPoint]) -> None:
        if self.builtins and not any(_load_order(ep)[0] == 0 for ep in eps):
            raise UserError(f"no built-in {self.label} is registered: the installed metadata of "
                            f"'{OWN_DISTRIBUTION}' lacks the entry points of {self.group} "
                            "(older than pyproject.toml?); reinstall it: pip install -e .")

    def _load(self, ep: EntryPoint) -> None:
        try:
            item = ep.load()
        except UserError:
            raise
        except Exception as err:
            raise PluginLoadError(f"{self.label} plugin '{ep.name}' ({ep.value}) could not be "
                                  f"loaded: {type(err).__name__}: {err}") from err
        if ep.attr is not None:
            self.add(ep.name, item, ep.value)
        elif ep.name not in self._items:
            raise PluginLoadError(f"{self.label} plugin '{ep.name}': module {ep.value} was "
                                  f"imported but registers no {self.label} '{ep.name}'")
