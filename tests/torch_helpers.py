"""For the torch.fx importer's tests: the parameter count torch itself gives a user's module."""

from __future__ import annotations

from pathlib import Path


def torch_params(path: Path, factory: str) -> int:
    """sum(p.numel()) over the parameters of the module `factory()` in the file at `path`
    returns (with its input shape)."""
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    module, _shape = namespace[factory]()
    return sum(p.numel() for p in module.parameters())
