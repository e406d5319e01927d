"""VGG16's parameters, buffers and data for the CuPy step, on any array module.

Holds:
- `MOMENTUM`: SGD's momentum (0.9).
- `VGGStep`: fp32 master weights, gradients and momentum as flat buffers (fp16 copies in
  mixed precision), a fixed random batch, and `step()`, one training step (passes.py).

Weights are initialised as torchvision does (He normal for convolutions, N(0, 0.01) for the
linear layers, zero biases) from a seeded generator: numpy's on numpy, CuPy's on CuPy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulator.measure.cupy_step.layout import param_layout, step_layers
from simulator.measure.cupy_step.passes import StepPass
from simulator.measure.cupy_step.reference_ops import NumpyOps

MOMENTUM = 0.9


class VGGStep:
    """Parameters, buffers and one training step of VGG16 on `ops`' array module."""

    def __init__(self, ops: NumpyOps, batch: int, precision: str, image: int, lr: float,
                 seed: int = 0) -> None:
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be fp32 or fp16, got {precision}")
        self.ops, self.xp, self.batch, self.lr = ops, ops.xp, batch, lr
        self.mixed = precision == "fp16"
        self.act = self.xp.float16 if self.mixed else self.xp.float32
        self.layers = step_layers()
        self.params, self.n_params = param_layout(self.layers)
        normal, integers = self._generators(1234 + seed)
        self._buffers(normal)
        self.x = normal(batch * image * image * 3).reshape(batch, image, image, 3)
        self.labels = integers(batch)
        self._ones: dict[Any, Any] = {}
        self.steps_done = 0

    def _generators(self, seed: int) -> tuple[Any, Any]:
        """Seeded standard-normal float32 and label (0..999 int32) draws on `xp`."""
        xp = self.xp
        rng = np.random.default_rng(seed)
        if xp is np:
            return (lambda count: rng.standard_normal(count, dtype=np.float32),
                    lambda count: rng.integers(0, 1000, count, dtype=np.int32))
        xp.random.seed(seed)
        return (lambda count: xp.random.standard_normal(count, dtype=xp.float32),
                lambda count: xp.random.randint(0, 1000, count, dtype=xp.int32))

    def _buffers(self, normal: Any) -> None:
        """Master weights (initialised), gradients, momentum; fp16 copies if mixed."""
        xp, size = self.xp, self.n_params
        self.master = xp.zeros(size, xp.float32)
        for name, p in self.params.items():  # torchvision's init: He (convs), N(0, 0.01)
            std = 0.01 if name.startswith("fc") else math.sqrt(2.0 / p.fan_in)
            p.weight(self.master)[...] = normal(p.wsize).reshape(p.out, p.fan_in) * np.float32(
                std)
        self.grad32 = xp.zeros(size, xp.float32)
        self.momentum = xp.zeros(size, xp.float32)
        self.w16 = xp.zeros(size, xp.float16) if self.mixed else None
        self.g16 = xp.zeros(size, xp.float16) if self.mixed else None

    def ones(self, n: int) -> Any:
        key = (n, self.act)
        if key not in self._ones:
            self._ones[key] = self.xp.ones(n, self.act)
        return self._ones[key]

    def wflat(self) -> Any:
        return self.w16 if self.mixed else self.master

    def gflat(self) -> Any:
        return self.g16 if self.mixed else self.grad32

    def step(self, marks: list | None = None, phases: list | None = None) -> Any:
        """One training step; appends (op name, stamp) to `marks` after each op if given,
        and a stamp after the forward pass and after the backward pass to `phases`."""
        run = StepPass(self, marks)
        logits, loss, lse = run.forward()
        if phases is not None:
            phases.append(self.ops.stamp())
        grad = run.loss_backward(logits, lse)
        del logits
        run.backward(grad)
        if phases is not None:
            phases.append(self.ops.stamp())
        self.ops.sgd_(self.master, self.grad32, self.momentum, self.lr, MOMENTUM)
        run.mark("optimizer.step")
        self.steps_done += 1
        return loss
