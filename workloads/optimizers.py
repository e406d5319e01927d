"""Optimizer update costs per parameter (fp32 master state), as PyTorch's foreach kernels run.

PyTorch's multi-tensor (foreach) kernels launch once per chunk list: each launch covers
at most 320 blocks x 65,536 elements, so large models take several launches per op.
Optimizers are plugins (registry `optimizer`, entry-point group `simulator.optimizer`): a
plugin registers an `Optimizer` instance under its name (docs/plugins.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.core import plugins
from simulator.core.registry import Registry

ELEMENTS_PER_FOREACH_LAUNCH = 320 * 65536


@dataclass(frozen=True)
class Optimizer:
    name: str
    state_per_param: int  # fp32 state tensors per parameter
    reads_per_param: int  # fp32 tensors read by one step (weights, grads, state)
    writes_per_param: int
    flops_per_param: float
    foreach_ops: int  # foreach kernels per step (each split into launches by size)

    def kernels(self, params: int) -> int:
        return self.foreach_ops * max(1, math.ceil(params / ELEMENTS_PER_FOREACH_LAUNCH))


OPTIMIZERS: Registry[Optimizer] = plugins.optimizer  # read-only mapping: OPTIMIZERS[name], in

# buf = momentum * buf + grad; w -= lr * buf
SGD = Optimizer("sgd", 1, 3, 2, 4.0, 3)
# m, v moments with bias correction: about a dozen flops per parameter
ADAM = Optimizer("adam", 2, 4, 3, 12.0, 6)
# AdamW: Adam plus decoupled weight decay, w *= 1 - lr * wd, one more foreach kernel over the
# weights before the update (torch/optim/adam.py, _multi_tensor_adam, decoupled_weight_decay)
ADAMW = Optimizer("adamw", 2, 5, 4, 13.0, 7)
for _builtin in (SGD, ADAM, ADAMW):
    OPTIMIZERS.add(_builtin.name, _builtin)


def get_optimizer(name: str) -> Optimizer:
    """The optimizer called `name`; an unknown name is a UserError listing the valid ones."""
    return OPTIMIZERS.get(name)
