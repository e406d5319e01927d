"""Links given by path (`--intra-link my-link.yaml`, YAML `intra_link: my-link.yaml`): a link
spec (`kind: link`, every LinkSpec field) or a link profile written by `calibrate-link`
(`link:` the catalog link it calibrates, `efficiency`, `latency_s`), used as it is, without
copying it into the installed package."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from hardware_models.catalog_io import load_link
from hardware_models.links import Link, calibrated_link, parse_link_profile
from hardware_models.spec import LinkSpec
from simulator.core.errors import UserError
from simulator.core.yaml_source import read_yaml_source

YAML_SUFFIXES = (".yaml", ".yml")


def is_link_file(name: object) -> bool:
    return isinstance(name, str) and name.lower().endswith(YAML_SUFFIXES)


def load_link_file(path: Path) -> Link:
    """A link from a YAML file: a link spec (`kind: link`) or a link profile (`link: NAME`)."""
    data = read_yaml_source(path, "expected a link profile or a link spec").data
    if isinstance(data, dict) and data.get("kind") == "link":
        try:
            return Link(LinkSpec.model_validate(data))
        except ValidationError as err:
            first = err.errors()[0]
            raise UserError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: "
                            f"{first['msg']}") from None
    if not isinstance(data, dict) or "link" not in data:
        raise UserError(f"{path}: expected a link profile (link: NAME, efficiency, latency_s) "
                        "or a link spec (kind: link)")
    profile = parse_link_profile(data, str(path))
    return calibrated_link(load_link(profile.link).spec, profile, f"calibrated ({path.name})")
