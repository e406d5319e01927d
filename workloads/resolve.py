"""Layer resolution: a model definition and a batch size -> every layer's input shapes and
cost (`ResolvedLayer`), through the `layer_kind` registry; the conv lowering choice
(`CONV_ALGORITHMS`) is applied here.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.core.errors import UserError
from workloads.layers import LayerCost, layer_kinds
from workloads.model_def import ModelDef

INPUT = "<input>"


@dataclass(frozen=True)
class ResolvedLayer:
    name: str
    kind: str
    inputs: tuple[str, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    cost: LayerCost


CONV_ALGORITHMS = ("implicit_gemm", "im2col")


def resolve_layers(model: ModelDef, batch: int,
                   conv_algorithm: str = "implicit_gemm") -> list[ResolvedLayer]:
    """Shapes and costs of every layer for one batch size."""
    if conv_algorithm not in CONV_ALGORITHMS:
        raise UserError(f"unknown conv algorithm '{conv_algorithm}'; valid: "
                        f"{', '.join(CONV_ALGORITHMS)}")
    shapes: dict[str, tuple[int, ...]] = {INPUT: tuple(model.input_shape)}
    previous, resolved = INPUT, []
    for layer in model.layers:
        inputs = tuple(layer.inputs or [previous])
        in_shapes = tuple(shapes[i] for i in inputs)
        try:
            args = {**layer.args(), "algorithm": conv_algorithm}
            cost = layer_kinds.get(layer.kind)(list(in_shapes), args, batch)
        except (ValueError, IndexError, TypeError) as err:
            raise UserError(f"model {model.name}: layer {layer.name}: {err}") from None
        shapes[layer.name] = cost.out_shape
        resolved.append(ResolvedLayer(layer.name, layer.kind, inputs, in_shapes, cost))
        previous = layer.name
    return resolved
