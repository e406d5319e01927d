"""Turn pydantic validation errors into the one-line messages a user can act on.

A pydantic error has a location (a tuple of keys and list indices) and a terse message.
Here each becomes `field.path: what is wrong, got VALUE` — for an unknown key, with the
valid keys of the model at that place; for a missing key, which key. Validators of this
package raise `invalid(...)` errors that carry a `subpath` inside the field (for example
the layer of an inline model that is wrong) so the message points at the exact line.
"""

from __future__ import annotations

import difflib
import math
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from simulator.core.errors import unknown_name

Loc = tuple[str | int, ...]
REPHRASE = {"Input should be": "must be", "Value error, ": "", "Assertion failed, ": ""}


def invalid(message: str, subpath: Sequence[str | int] = ()) -> PydanticCustomError:
    """An error for a validator to raise: `message` shown as is, located at field + subpath."""
    return PydanticCustomError("invalid", "{detail}", {"detail": message,
                                                       "subpath": tuple(subpath)})


def one_of(kind: str, value: Any, valid: Sequence[str]) -> Any:
    """`value` if it is one of `valid`, else the unknown-name error listing them."""
    if not isinstance(value, str) or value not in valid:
        raise invalid(str(unknown_name(kind, str(value), list(valid))))
    return value


def check_finite(value: Any, path: tuple[str | int, ...] = ()) -> None:
    """Reject NaN and infinity anywhere inside `value` (YAML writes them .nan and .inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid(f"must be a finite number, got {value!r}", path)
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, (list, tuple)) else ())
    for key, item in items:
        check_finite(item, (*path, key))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic model classes inside an annotation (Optional, list, dict, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that holds the field at `loc` (list indices and dict keys skipped)."""
    current: type[BaseModel] | None = root
    for part in loc:
        if current is None:
            return None
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # a list index or a dict key: stay on the item type
        candidates = _models_in(field.annotation)
        current = candidates[0] if candidates else None
    return current


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _rephrase(msg: str) -> str:
    for old, new in REPHRASE.items():
        msg = msg.replace(old, new)
    return msg


def describe(detail: ErrorDetails, root: type[BaseModel]) -> tuple[Loc, str]:
    """(location, message) for one pydantic error found while validating `root`."""
    loc: Loc = tuple(detail["loc"])
    kind, ctx = detail["type"], detail.get("ctx") or {}
    if kind == "invalid":
        return loc + tuple(ctx.get("subpath", ())), str(ctx["detail"])
    if kind == "missing":
        return loc, "required field is missing"
    if kind == "extra_forbidden":
        holder = model_at(root, loc[:-1])
        fields = list(holder.model_fields) if holder else []
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        valid = f"; valid fields: {', '.join(fields)}" if fields else ""
        return loc, f"unknown field '{loc[-1]}'{hint}{valid}"
    if kind == "too_short":
        return loc, f"must have at least {ctx.get('min_length', 1)} item(s)"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        holder = model_at(root, loc)
        listed = f" with fields {', '.join(holder.model_fields)}" if holder else ""
        return loc, f"must be a mapping{listed}, got {_shown(detail['input'])}"
    return loc, f"{_rephrase(detail['msg'])}, got {_shown(detail['input'])}"


def first_error(err: ValidationError, root: type[BaseModel]) -> tuple[Loc, str]:
    """The error to show: an unknown key first, since it often explains a missing one."""
    errors = err.errors()
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    return describe((unknown or errors)[0], root)


def nested(cls: type[BaseModel], data: Any, context: dict[str, Any] | None = None) -> Any:
    """Validate `data` as `cls` inside another validator, keeping the inner error's location."""
    try:
        return cls.model_validate(data, context=context)
    except ValidationError as err:
        loc, message = first_error(err, cls)
        raise invalid(message, loc) from None

