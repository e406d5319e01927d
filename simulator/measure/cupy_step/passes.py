"""The forward and backward pass of one CuPy VGG16 training step, op by op.

Holds:
- `StepPass`: the state of one step (tensors saved for backward, the op marks) and its
  `forward()`, `loss_backward()` and `backward()`, which run one handler per layer kind:
  `_FORWARD[kind]` and `_BACKWARD[kind]`.

After each op it marks (op name, stamp) under the name the simulator's graph gives that op
(`build_graph(..., conv_algorithm="im2col")`), so the marks of a profiled step are the
graph's op sequence; the order of the kernels here is the order of that graph.
"""

from __future__ import annotations

from typing import Any

from simulator.measure.cupy_step.layout import Param
from simulator.measure.model_layers import Layer


class StepPass:
    """One training step of `model`: forward, loss and backward (the caller runs SGD)."""

    def __init__(self, model: Any, marks: list | None) -> None:
        """`model` is the `VGGStep` (model.py) whose buffers, data and layers to use."""
        self.model, self.ops, self.xp = model, model.ops, model.xp
        self.marks = marks
        self.saved: dict[str, Any] = {}
        self.wflat, self.gflat = model.wflat(), model.gflat()
        self.seed = model.steps_done * 7919 + 17
        self.n = model.batch

    def mark(self, name: str) -> None:
        if self.marks is not None:
            self.marks.append((name, self.ops.stamp()))

    def forward(self) -> tuple[Any, Any, Any]:
        """Logits, loss and the rows' log-sum-exp; the input cast first in mixed precision."""
        model = self.model
        h = model.x
        if model.mixed:
            h = self.xp.empty(model.x.shape, model.act)
            self.ops.cast(h, model.x)
            self.mark("input.cast")
        for layer in model.layers:
            p = model.params.get(layer.name)
            if p is not None and model.mixed:
                self.ops.cast(p.slice(model.w16), p.slice(model.master))
                self.mark(f"{layer.name}.weight_cast")
            h = _FORWARD[layer.kind](self, layer, p, h)
        loss, lse = self.ops.loss_fwd(h, model.labels)
        self.mark("loss.fwd")
        return h, loss, lse

    def loss_backward(self, logits: Any, lse: Any) -> Any:
        """The gradient of the loss with respect to the logits."""
        g = self.xp.empty(logits.shape, self.model.act)
        self.ops.loss_bwd(logits, self.model.labels, lse, g)
        self.mark("loss.bwd")
        return g

    def backward(self, g: Any) -> None:
        """Backward through the layers in reverse; fp16 weight gradients cast to fp32."""
        model = self.model
        for layer in reversed(model.layers):
            p = model.params.get(layer.name)
            g = _BACKWARD[layer.kind](self, layer, p, g)
            if p is not None and model.mixed:
                self.ops.cast(p.slice(model.grad32), p.slice(model.g16))
                self.mark(f"{layer.name}.grad_cast")


# --- forward, one function per layer kind: (pass, layer, its Param or None, input) -> output


def _conv_fwd(run: StepPass, layer: Layer, p: Param, h: Any) -> Any:
    xp, name = run.xp, layer.name
    _, hh, ww, c = h.shape
    cols = xp.empty((run.n * hh * ww, 9 * c), run.model.act)
    run.ops.im2col(h, cols)
    run.mark(f"{name}.fwd.prologue")
    y = xp.dot(cols, p.weight(run.wflat).T)
    del cols
    run.mark(f"{name}.fwd")
    y += p.bias(run.wflat)
    run.mark(f"{name}.fwd.epilogue")
    run.saved[name] = h
    return y.reshape(run.n, hh, ww, p.out)


def _relu_fwd(run: StepPass, layer: Layer, p: Param | None, h: Any) -> Any:
    run.ops.relu_(h)
    run.mark(f"{layer.name}.fwd")
    run.saved[layer.name] = h
    return h


def _maxpool_fwd(run: StepPass, layer: Layer, p: Param | None, h: Any) -> Any:
    shape = h.shape
    h, idx = run.ops.maxpool(h)
    run.saved[layer.name] = (shape, idx)
    run.mark(f"{layer.name}.fwd")
    return h


def _avgpool_fwd(run: StepPass, layer: Layer, p: Param | None, h: Any) -> Any:
    size = layer.out_shape[1]
    run.saved[layer.name] = h.shape
    h = run.ops.copy(h) if h.shape[1:3] == (size, size) else run.ops.adaptive_avgpool(h, size)
    run.mark(f"{layer.name}.fwd")
    return h


def _flatten_fwd(run: StepPass, layer: Layer, p: Param | None, h: Any) -> Any:
    run.saved[layer.name] = h.shape
    return h.reshape(run.n, -1)


def _linear_fwd(run: StepPass, layer: Layer, p: Param, h: Any) -> Any:
    run.saved[layer.name] = h
    h = run.xp.dot(h, p.weight(run.wflat).T)
    h += p.bias(run.wflat)
    run.mark(f"{layer.name}.fwd")
    return h


def _dropout_fwd(run: StepPass, layer: Layer, p: Param | None, h: Any) -> Any:
    seed = run.seed + len(run.saved)  # one stream per layer and step
    h, run.saved[layer.name] = run.ops.dropout(h, seed, layer.args["p"])
    run.mark(f"{layer.name}.fwd")
    return h


# --- backward, one function per layer kind: (pass, layer, Param or None, grad) -> grad_in


def _conv_bwd(run: StepPass, layer: Layer, p: Param, g: Any) -> Any:
    """Input gradient (GEMM, then col2im; none for the first layer), then weight and bias
    gradients (im2col recomputed; the bias gradient is a GEMM with a ones vector)."""
    xp, name = run.xp, layer.name
    x_in = run.saved.pop(name)
    g2 = g.reshape(-1, p.out)
    gx = None
    if name != run.model.layers[0].name:
        gcols = xp.dot(g2, p.weight(run.wflat))
        run.mark(f"{name}.bwd_data")
        gx = run.ops.col2im(gcols, x_in.shape)
        del gcols
        run.mark(f"{name}.bwd_data.epilogue")
    cols = xp.empty((g2.shape[0], p.fan_in), run.model.act)
    run.ops.im2col(x_in, cols)
    run.mark(f"{name}.bwd_weight.prologue")
    xp.dot(g2.T, cols, out=p.weight(run.gflat))
    del cols
    run.mark(f"{name}.bwd_weight")
    xp.dot(run.model.ones(g2.shape[0]), g2, out=p.bias(run.gflat))
    run.mark(f"{name}.bwd_weight.epilogue")
    return gx


def _relu_bwd(run: StepPass, layer: Layer, p: Param | None, g: Any) -> Any:
    run.ops.relu_bwd_(run.saved.pop(layer.name), g)
    run.mark(f"{layer.name}.bwd_data")
    return g


def _maxpool_bwd(run: StepPass, layer: Layer, p: Param | None, g: Any) -> Any:
    shape, idx = run.saved.pop(layer.name)
    g = run.ops.maxpool_bwd(g, idx, shape)
    run.mark(f"{layer.name}.bwd_data")
    return g


def _avgpool_bwd(run: StepPass, layer: Layer, p: Param | None, g: Any) -> Any:
    shape, size = run.saved.pop(layer.name), layer.out_shape[1]
    same = tuple(shape[1:3]) == (size, size)
    g = run.ops.copy(g) if same else run.ops.adaptive_avgpool_bwd(g, shape)
    run.mark(f"{layer.name}.bwd_data")
    return g


def _flatten_bwd(run: StepPass, layer: Layer, p: Param | None, g: Any) -> Any:
    return g.reshape(run.saved.pop(layer.name))


def _linear_bwd(run: StepPass, layer: Layer, p: Param, g: Any) -> Any:
    xp = run.xp
    x_in = run.saved.pop(layer.name)
    gx = xp.dot(g, p.weight(run.wflat))
    run.mark(f"{layer.name}.bwd_data")
    xp.dot(g.T, x_in, out=p.weight(run.gflat))
    xp.dot(run.model.ones(run.n), g, out=p.bias(run.gflat))
    run.mark(f"{layer.name}.bwd_weight")
    return gx


def _dropout_bwd(run: StepPass, layer: Layer, p: Param | None, g: Any) -> Any:
    run.ops.dropout_bwd_(g, run.saved.pop(layer.name), layer.args["p"])
    run.mark(f"{layer.name}.bwd_data")
    return g


_FORWARD = {"conv2d": _conv_fwd, "relu": _relu_fwd, "maxpool2d": _maxpool_fwd,
            "adaptive_avgpool2d": _avgpool_fwd, "flatten": _flatten_fwd,
            "linear": _linear_fwd, "dropout": _dropout_fwd}
_BACKWARD = {"conv2d": _conv_bwd, "relu": _relu_bwd, "maxpool2d": _maxpool_bwd,
             "adaptive_avgpool2d": _avgpool_bwd, "flatten": _flatten_bwd,
             "linear": _linear_bwd, "dropout": _dropout_bwd}
