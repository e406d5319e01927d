"""Layer resolution: a model definition and a batch size -> every layer's input shapes and
cost (`ResolvedLayer`), through the `layer_kind` registry; the conv lowering choice
(`CONV_ALGORITHMS`) is applied here.

A layer function (built in or a plugin's) that cannot cost its layer — a shape that does not
fit, an argument it needs and the layer lacks, a number out of range — becomes one UserError
line naming the layer (and, for a model read from a file, the file and line); so does a
batch outside 1..MAX_BATCH and an output shape that is not a tuple of positive integers.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from simulator.core.errors import UserError, shown
from simulator.core.held_cache import HeldCache
from workloads.layers import LayerCost, layer_kinds
from workloads.model_def import INPUT, MODEL_INPUT, LayerDef, ModelDef

__all__ = ["CONV_ALGORITHMS", "INPUT", "MAX_BATCH", "ResolvedLayer", "resolve_layers"]

MAX_BATCH = 2**31  # samples per device per step
LAYER_FAILURES = (ValueError, IndexError, TypeError, KeyError, ArithmeticError)


@dataclass(frozen=True)
class ResolvedLayer:
    name: str
    kind: str
    inputs: tuple[str, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    cost: LayerCost


CONV_ALGORITHMS = ("implicit_gemm", "im2col")


def _whole(value: object) -> int | None:
    """`value` as an int if it is an integer (Python's or numpy's, not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def check_batch(batch: object) -> int:
    """`batch` if it is an integer from 1 to MAX_BATCH, else a one-line UserError."""
    whole = _whole(batch)
    if whole is None or not 1 <= whole <= MAX_BATCH:
        raise UserError(f"batch: must be an integer from 1 to 2**31 ({MAX_BATCH:,}) samples "
                        f"per device, got {shown(batch)}")
    return whole


def _layer_error(model: ModelDef, index: int, layer: LayerDef, what: str) -> UserError:
    located = model.located(("layers", index), f"layer {layer.name} ({layer.kind}): {what}")
    return located or UserError(f"model {model.name}: layer {layer.name}: {what}")


def _failure(err: Exception) -> str:
    if isinstance(err, KeyError):
        return f"the layer needs argument {shown(err.args[0] if err.args else '?')}"
    return f"{err}" if str(err) else type(err).__name__


def _checked_shape(cost: object) -> tuple[int, ...]:
    shape = getattr(cost, "out_shape", None)
    if not isinstance(shape, tuple) or not shape or not all(
            (_whole(d) or 0) >= 1 for d in shape):
        raise ValueError(f"the layer function returned an output shape of {shown(shape)}; "
                         "expected a tuple of positive integers")
    return shape


# Costs already worked out, by (layer function, input shapes, arguments, batch, algorithm): a
# layer function is a pure function of these (docs/plugins.md), so the repeated blocks of a
# network (ResNet's bottlenecks, a transformer's layers) and every later point of a sweep at
# the same batch reuse them. LayerCost and Work are frozen: sharing one is safe.
_costs = HeldCache(4096)
# The layers of a model resolved last, by model object (held in the entry), batch and algorithm.
_resolved = HeldCache(64)


def forget_resolved() -> None:
    """Empty the caches of resolved layers and costs (a benchmark's cold start)."""
    _costs.clear()
    _resolved.clear()


def _resolve_one(model: ModelDef, index: int, layer: LayerDef, in_shapes: list[tuple[int, ...]],
                 batch: int, conv_algorithm: str) -> LayerCost:
    fn = layer_kinds.get(layer.kind)
    key = (fn, tuple(in_shapes), layer.args_key, batch, conv_algorithm)
    cost: LayerCost | None = _costs.get((), key)
    if cost is not None:
        return cost
    try:
        args = {**layer.args(), "algorithm": conv_algorithm}
        cost = fn(in_shapes, args, batch)
        _checked_shape(cost)
    except LAYER_FAILURES as err:
        raise _layer_error(model, index, layer, _failure(err)) from None
    _costs.put((), key, cost)
    return cost


def resolve_layers(model: ModelDef, batch: int,
                   conv_algorithm: str = "implicit_gemm") -> list[ResolvedLayer]:
    """Shapes and costs of every layer for one batch size."""
    if conv_algorithm not in CONV_ALGORITHMS:
        raise UserError(f"unknown conv algorithm '{conv_algorithm}'; valid: "
                        f"{', '.join(CONV_ALGORITHMS)}")
    check_batch(batch)
    resolved: list[ResolvedLayer] | None = _resolved.get((model,), (batch, conv_algorithm))
    if resolved is None:
        resolved = _resolve_all(model, batch, conv_algorithm)
        _resolved.put((model,), (batch, conv_algorithm), resolved)
    return list(resolved)


def _resolve_all(model: ModelDef, batch: int, conv_algorithm: str) -> list[ResolvedLayer]:
    shapes: dict[str, tuple[int, ...]] = {INPUT: model.shape}
    previous, resolved = INPUT, []
    for index, layer in enumerate(model.layers):
        inputs = tuple(INPUT if i == MODEL_INPUT else i for i in layer.inputs or [previous])
        missing = [i for i in inputs if i not in shapes]
        if missing:
            raise _layer_error(model, index, layer, f"input '{missing[0]}' is not an earlier "
                               "layer")
        in_shapes = tuple(shapes[i] for i in inputs)
        cost = _resolve_one(model, index, layer, list(in_shapes), batch, conv_algorithm)
        shapes[layer.name] = cost.out_shape
        resolved.append(ResolvedLayer(layer.name, layer.kind, inputs, in_shapes, cost))
        previous = layer.name
    return resolved
