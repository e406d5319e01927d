"""Layer kind `swish`: x * sigmoid(x), elementwise, one kernel forward and one backward."""

from __future__ import annotations

import math
from typing import Any

from workloads.layers import LayerCost, Shape, Work


def swish(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """Forward: 4 flops per element (exp, add, divide, multiply), reads x, writes y;
    backward: 6 flops per element, reads x and dy, writes dx. Keeps x for backward."""
    n = batch * math.prod(shapes[0])
    fwd = Work("elementwise", 4.0 * n, n, n, n, kernel="swish")
    bwd = Work("elementwise", 6.0 * n, 2 * n, n, n, kernel="swish")
    return LayerCost(shapes[0], 0, fwd, bwd, None, float(n))
