"""Layer kinds and their exact cost formulas: output shape, parameters, and the work of the
forward, backward-data and backward-weight passes.

Shapes are per sample: (C, H, W) for images, (F,) for flat features. Work is counted in
elements (dtype-free); the builder turns elements into bytes for the chosen precision.
A convolution is costed by the algorithm the library runs for its shape (`conv_algorithm`,
as cuDNN 9 and PyTorch choose on NCHW tensors, read off the kernel names of
measurements/h200-conv-layers.json): a depthwise convolution (groups = channels) is PyTorch's
own depthwise kernel, a vector loop of 2 x taps FLOPs per output; a 1x1 stride-1 convolution
is a plain GEMM per sample (cuBLAS); every other shape is an implicit GEMM (direct-convolution
FLOPs), whose tensor-core kernels are NHWC: the NCHW activations it reads and writes are
transposed around it (`layout` elements; the GPU model prices them where the dtype runs on
tensor cores). Without tensor cores (fp32-strict) cuDNN runs the weight gradient of a 3x3
stride-1 convolution as non-fused Winograd F(4x4, 3x3) (`winograd_tiles`); the FFT it chose
for 30 of 292 fp32-strict forward and data-gradient passes (never under TF32 or bf16) is not
modelled. With `algorithm: im2col` a convolution is explicit lowering (Caffe, Torch's "nn",
CuPy): an im2col kernel writes the patch matrix, a GEMM reads it, and backward-data scatters
the patch gradients back with col2im.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from simulator.core import plugins
from simulator.core.registry import Registry
from workloads.ops import Gemm

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Work:
    """The work of one pass of one layer, in elements."""

    kind: str
    flops: float
    act_read: float
    act_write: float
    work_items: int
    weight_read: float = 0.0
    weight_write: float = 0.0
    gemm: Gemm | None = None
    kernels: int = 1
    extra_bytes: float = 0.0  # dtype-independent bytes, e.g. int64 pooling indices
    epilogue: Work | None = None  # a separate kernel that follows (e.g. a bias add)
    prologue: Work | None = None  # a separate kernel that comes first (e.g. im2col)
    kernel: str = ""  # the kernel's own name where its speed differs from its kind's (relu)
    algorithm: str = ""  # a convolution's algorithm (conv_algorithm), shown per layer
    layout: float = 0.0  # elements a tensor-core conv kernel transposes NCHW <-> NHWC
    winograd_tiles: float = 0.0  # 4x4 output tiles of a Winograd F(4x4, 3x3) weight gradient
    ctas: int = 0  # thread blocks of a kernel that runs one per channel (0: enough for any GPU)
    reread: float = 0.0  # elements of act_read a second pass reads again (batch norm's statistics
    #                      then its normalisation): served by the L2 cache where they fit in it
    align: int = 0  # a GEMM's operand alignment: the largest power of two (<= 64) dividing the
    #                 dimensions its leading strides are made of (0: not a library GEMM)
    unaligned: Work | None = None  # what the libraries run instead where `align` elements of
    #                                the dtype it runs in are not 16 bytes (a 1x1 convolution's
    #                                per-sample GEMM -> cuDNN's implicit GEMM)


@dataclass(frozen=True)
class LayerCost:
    """Everything the builder needs from one layer for one batch size."""

    out_shape: Shape
    params: int
    fwd: Work | None
    bwd_data: Work | None
    bwd_weight: Work | None
    saved_elems: float  # activation elements kept for the backward pass
    saved_extra_bytes: float = 0.0
    lowp: bool = False  # runs in low precision under autocast (matmul/conv)
    fp32: bool = False  # autocast keeps it in fp32 (softmax, loss)
    train_only: bool = False  # an identity in inference (dropout in eval mode)
    infer_fwd: Work | None = None  # the forward pass in inference where it differs (batch norm)
    index_input: bool = False  # reads integer ids (an embedding): autocast casts nothing


LayerFn = Callable[[list[Shape], dict[str, Any], int], LayerCost]
layer_kinds: Registry[LayerFn] = plugins.layer_kind  # entry points: simulator.layer_kind


def _prod(shape: Shape) -> int:
    return math.prod(shape)


def _pair(value: Any) -> tuple[int, int]:
    """An argument given as one integer or as [height, width]."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"expected an integer or [height, width], got {list(value)}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _image(shapes: list[Shape], kind: str) -> tuple[int, int, int]:
    """The one (C, H, W) input of a convolution or pooling layer."""
    if len(shapes) != 1 or len(shapes[0]) != 3:
        got = shapes[0] if len(shapes) == 1 else f"{len(shapes)} inputs"
        raise ValueError(f"{kind} needs one (channels, height, width) input, got {got}")
    c, h, w = shapes[0]
    return c, h, w


def out_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """Output positions along one axis, as PyTorch counts them: windows that fit (padding
    both sides), and with ceil_mode one more for a partial last window, provided it starts
    inside the input or its left padding (ATen's pooling_output_shape)."""
    out = (size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _out_hw(h: int, w: int, args: dict[str, Any]) -> tuple[int, int]:
    kh, kw = _pair(args["kernel"])
    sh, sw = _pair(args.get("stride", 1))
    ph, pw = _pair(args.get("padding", 0))
    ceil_mode = bool(args.get("ceil_mode", False))
    ho, wo = out_size(h, kh, sh, ph, ceil_mode), out_size(w, kw, sw, pw, ceil_mode)
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit a {h}x{w} input")
    return ho, wo


def elementwise(n_in: float, n_out: float, flops_per: float, items: int, kernel: str) -> Work:
    return Work("elementwise", flops_per * n_out, n_in, n_out, items, kernel=kernel)


def _patch_product(shapes: list[Shape], args: dict[str, Any], batch: int,
                   untied: bool) -> LayerCost:
    """Convolution (shared weights) or locally connected layer (untied weights)."""
    c, h, w = _image(shapes, "locally_connected" if untied else "conv2d")
    cout, groups = int(args["out_channels"]), int(args.get("groups", 1))
    if c % groups or cout % groups:
        raise ValueError(f"channels {c}->{cout} are not divisible by groups={groups}")
    kh, kw = _pair(args["kernel"])
    ho, wo = _out_hw(h, w, args)
    cg, og, taps = c // groups, cout // groups, kh * kw
    bias = bool(args.get("bias", True))
    positions = ho * wo
    n_in, n_out = batch * c * h * w, batch * cout * positions
    if untied:  # one small GEMM per output position: batched over positions
        weights = positions * cout * cg * taps
        fwd_g = Gemm(batch, og, cg * taps, positions * groups)
        bwd_d = Gemm(batch, cg * taps, og, positions * groups)
        bwd_w = Gemm(og, cg * taps, batch, positions * groups)
        params = weights + (cout * positions if bias else 0)
    else:
        weights = cout * cg * taps
        fwd_g = Gemm(batch * positions, og, cg * taps, groups)
        if positions == h * w:  # 'same' convolution: dgrad is itself an implicit-GEMM conv
            bwd_d = Gemm(batch * h * w, cg, og * taps, groups)
        else:  # strided/valid: grad_cols = grad_out @ W^T, then col2im (same FLOPs as fwd)
            bwd_d = Gemm(batch * positions, cg * taps, og, groups)
        bwd_w = Gemm(og, cg * taps, batch * positions, groups)
        params = weights + (cout if bias else 0)
    # PyTorch adds a convolution's bias in a kernel of its own after cuDNN's, and reduces
    # the bias gradient in another: each reads (and the add writes) the whole output.
    bias_add = Work("elementwise", n_out, n_out, n_out, n_out, kernel="bias_add") if bias else None
    bias_grad = (Work("reduction", n_out, n_out, 0, cout, weight_write=cout, kernel="bias_grad")
                 if bias else None)
    fwd = Work("gemm", fwd_g.flops, n_in, n_out, n_out, weight_read=weights, gemm=fwd_g,
               epilogue=bias_add)
    bwd_data = Work("gemm", bwd_d.flops, n_out, n_in, n_in, weight_read=weights, gemm=bwd_d)
    bwd_weight = Work("gemm", bwd_w.flops, n_in + n_out, 0, weights, weight_write=weights,
                      gemm=bwd_w, epilogue=bias_grad)
    if args.get("algorithm") == "im2col" and not untied:  # plain GEMMs on the patch matrix
        fwd, bwd_data, bwd_weight = _im2col(fwd, bwd_data, bwd_weight, n_in, n_out,
                                            batch * positions * c * taps, taps)
        fwd, bwd_data, bwd_weight = (replace(w, algorithm="im2col")
                                     for w in (fwd, bwd_data, bwd_weight))
    elif not untied:
        algorithm = conv_algorithm(c, cout, (kh, kw), _pair(args.get("stride", 1)), groups)
        works = (fwd, bwd_data, bwd_weight)
        fwd, bwd_data, bwd_weight = _by_algorithm(algorithm, works, n_in, n_out, taps, batch,
                                                  positions)
        if algorithm == "gemm":
            # cuBLAS runs the per-sample product where its strides (the pixels of a channel,
            # the channels) are 16-byte multiples; else cuDNN runs the implicit GEMM behind
            # NCHW <-> NHWC transposes (the kernel names of measurements/h200-conv-layers.json:
            # 7x7 maps in TF32 and bf16, 14x14 in bf16)
            align = alignment(c, cout, positions)
            fwd, bwd_data, bwd_weight = (
                replace(w, align=align, unaligned=u) for w, u in zip(
                    (fwd, bwd_data, bwd_weight),
                    _by_algorithm("implicit_gemm", works, n_in, n_out, taps, batch, positions),
                    strict=True))
        if algorithm == "implicit_gemm" and (kh, kw) == (3, 3) and positions == h * w \
                and groups == 1 and c > 4:  # cuDNN's CUDA-core weight gradient: Winograd
            bwd_weight = replace(bwd_weight, winograd_tiles=float(
                batch * math.ceil(ho / 4) * math.ceil(wo / 4)))
    return LayerCost((cout, ho, wo), params, fwd, bwd_data, bwd_weight, n_in, lowp=True)


# Fewer input channels than one tensor-core MMA step takes (8 of a 2-byte dtype; an RGB
# image's 3): cuDNN runs the convolution on its CUDA-core kernels (implicit_convolve_sgemm,
# dgrad_engine, wgrad_alg0_engine) or pads the channels to 8 for CUTLASS's tensor-op kernels
# behind NCHW <-> NHWC transposes, in every dtype (the kernel names of
# measurements/h200-conv-layers.json): a rate of its own per pass, not the tensor cores'.
MMA_CHANNELS = 8
SMALL_CHANNEL_KERNELS = {"fwd": "stem_fprop", "bwd_data": "stem_dgrad", "bwd_weight": "stem_wgrad"}


def conv_algorithm(channels: int, out_channels: int, kernel: tuple[int, int],
                   stride: tuple[int, int], groups: int) -> str:
    """The algorithm PyTorch and cuDNN run for a convolution of this shape on NCHW tensors."""
    if groups > 1 and groups == channels and out_channels % channels == 0:
        return "depthwise"
    if groups == 1 and channels < MMA_CHANNELS:
        return "small_channels"
    if kernel == (1, 1) and stride == (1, 1) and groups == 1:
        return "gemm"
    return "implicit_gemm"


def _by_algorithm(algorithm: str, works: tuple[Work, Work, Work], n_in: int, n_out: int,
                  taps: int, batch: int, positions: int) -> tuple[Work, Work, Work]:
    """The three passes as the algorithm runs them (forward, backward-data, backward-weight)."""
    fwd, bwd_data, bwd_weight = works
    if algorithm == "depthwise":  # one vector loop per pass: 2 x taps FLOPs per element,
        # a kernel of its own per pass (with a cost per element beyond the taps: 5x5 and 7x7
        # windows run 2-3x faster per tap than 3x3, measured on the H200)
        dw = {"gemm": None, "algorithm": algorithm}
        return (replace(fwd, flops=2.0 * taps * n_out, work_items=n_out, kernel="depthwise",
                        **dw),  # type: ignore[arg-type]
                replace(bwd_data, flops=2.0 * taps * n_in, work_items=n_in,
                        kernel="depthwise_dgrad", **dw),  # type: ignore[arg-type]
                replace(bwd_weight, flops=2.0 * taps * n_out, work_items=n_out,
                        kernel="depthwise_wgrad", **dw))  # type: ignore[arg-type]
    if algorithm == "small_channels":  # its own kernels per pass, the product's FLOPs
        return tuple(replace(w, kernel=kernel, algorithm=algorithm)  # type: ignore[return-value]
                     for w, kernel in zip(works, SMALL_CHANNEL_KERNELS.values(), strict=True))
    if algorithm == "gemm":  # per sample: W [Cout x Cin] times x [Cin x HW], no transposes
        fwd_g, data_g = fwd.gemm, bwd_data.gemm
        assert fwd_g is not None and data_g is not None
        fwd = replace(fwd, gemm=Gemm(fwd_g.n, positions, fwd_g.k, batch))
        bwd_data = replace(bwd_data, gemm=Gemm(data_g.n, positions, data_g.k, batch))
        works = (fwd, bwd_data, bwd_weight)
        return tuple(replace(w, kernel="conv", algorithm=algorithm) for w in works)  # type: ignore[return-value]
    # NHWC tensor-core kernels on NCHW tensors: the forward pass transposes its input (its
    # output is written NCHW by the kernel), each backward pass dy and x or dx (the kernel
    # times of measurements/h200-conv-layers.json scale so)
    layouts = (float(n_in), float(n_in + n_out), float(n_in + n_out))
    return tuple(replace(w, kernel="conv", algorithm=algorithm, layout=layout)  # type: ignore[return-value]
                 for w, layout in zip(works, layouts, strict=True))


def _im2col(fwd: Work, bwd_data: Work, bwd_weight: Work, n_in: int, n_out: int, cols: int,
            taps: int) -> tuple[Work, Work, Work]:
    """Explicit lowering: the GEMMs read and write the patch matrix (`cols` elements)."""
    im2col = Work("elementwise", float(cols), n_in, cols, cols, kernel="im2col")
    col2im = Work("elementwise", float(cols), cols, n_in, n_in, kernel="col2im")
    fwd = replace(fwd, act_read=cols, prologue=im2col)
    bwd_data = replace(bwd_data, act_write=cols, epilogue=col2im)
    bwd_weight = replace(bwd_weight, act_read=cols + n_out, prologue=im2col)
    return fwd, bwd_data, bwd_weight


@layer_kinds.register("conv2d")
def conv2d(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    return _patch_product(shapes, args, batch, untied=False)


@layer_kinds.register("locally_connected")
def locally_connected(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    return _patch_product(shapes, args, batch, untied=True)


def alignment(*dims: int) -> int:
    """The largest power of two, at most 64, that divides every dimension: a GEMM library's
    vector loads need strides of a multiple of 16 bytes (8 bf16 elements)."""
    align = 64
    while align > 1 and any(d % align for d in dims):
        align //= 2
    return align


@layer_kinds.register("linear")
def linear(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """A linear layer on the last dimension of any shape, as torch.nn.Linear: every leading
    position (a token, a pixel) is one more row of the GEMM. Flattening is the `flatten`
    layer's; `in_features`, where given, must be the last dimension."""
    return linear_on_last(shapes, args, batch, tied=False)


def linear_on_last(shapes: list[Shape], args: dict[str, Any], batch: int,
                    tied: bool) -> LayerCost:
    """A linear layer (or an output head tied to an embedding: no parameters of its own, no
    bias, its weight gradient accumulated into the embedding's) on the last dimension."""
    if len(shapes) != 1:
        raise ValueError(f"linear needs one input, got {len(shapes)}")
    *lead, f = shapes[0]
    o = int(args["out_features"])
    if args.get("in_features", f) != f:
        raise ValueError(f"in_features is {args['in_features']} but the input's last "
                         f"dimension is {f} (input shape {list(shapes[0])}); add a flatten "
                         "layer before it to flatten an image")
    bias = bool(args.get("bias", not tied)) and not tied
    weights = f * o
    params = 0 if tied else weights + (o if bias else 0)
    rows = batch * _prod(tuple(lead))
    fwd_g, bwd_d, bwd_w = Gemm(rows, o, f), Gemm(rows, f, o), Gemm(o, f, rows)
    n_in, n_out = rows * f, rows * o
    grads = weights + (o if bias else 0)
    # every pass's leading strides are the feature sizes (rows are never a stride)
    align = alignment(f, o)
    fwd = Work("gemm", fwd_g.flops, n_in, n_out, n_out, weight_read=weights, gemm=fwd_g,
               align=align)
    bwd_data = Work("gemm", bwd_d.flops, n_out, n_in, n_in, weight_read=weights, gemm=bwd_d,
                    align=align)
    # a tied head adds its gradient to the embedding's: it reads the gradient it adds to
    bwd_weight = Work("gemm", bwd_w.flops, n_in + n_out, 0, grads, weight_write=grads,
                      weight_read=weights if tied else 0.0, gemm=bwd_w, align=align)
    return LayerCost((*lead, o), params, fwd, bwd_data, bwd_weight, n_in, lowp=True)


def _pool(shapes: list[Shape], args: dict[str, Any], batch: int, indices: bool) -> LayerCost:
    c, h, w = _image(shapes, "pooling")
    args = {"stride": args.get("stride", args["kernel"]), **args}
    ho, wo = _out_hw(h, w, args)
    kh, kw = _pair(args["kernel"])
    n_in, n_out = batch * c * h * w, batch * c * ho * wo
    idx_bytes = 8.0 * n_out if indices else 0.0  # int64 argmax indices, as PyTorch keeps
    kernel = "maxpool2d" if indices else "avgpool2d"
    fwd = Work("pool", float(n_out * kh * kw), n_in, n_out, n_out, extra_bytes=idx_bytes,
               kernel=kernel)
    # the backward visits, per input element, the outputs whose windows may hold it (measured
    # on the H200: 2x2/2 windows 97, 3x3/2 82, 3x3/1 57 G inputs/s); max pooling's zeroes the
    # input gradient first (a fill kernel), then scatters
    sh, sw = _pair(args["stride"])
    candidates = math.ceil(kh / sh) * math.ceil(kw / sw)
    bwd = Work("pool", float(n_in * candidates), n_out, n_in, n_in, extra_bytes=idx_bytes,
               kernel=f"{kernel}_bwd", kernels=2 if indices else 1)
    saved = 0.0 if indices else n_in
    return LayerCost((c, ho, wo), 0, fwd, bwd, None, saved, saved_extra_bytes=idx_bytes)


@layer_kinds.register("maxpool2d")
def maxpool2d(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    return _pool(shapes, args, batch, indices=True)


@layer_kinds.register("avgpool2d")
def avgpool2d(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    return _pool(shapes, args, batch, indices=False)


@layer_kinds.register("l2pool2d")
def l2pool2d(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """sqrt(sum of squares) over a window (Le et al. 2012): pooling with 2 flops per tap."""
    cost = _pool(shapes, args, batch, indices=False)
    fwd = cost.fwd
    assert fwd is not None
    doubled = Work("pool", 2 * fwd.flops + fwd.act_write, fwd.act_read, fwd.act_write,
                   fwd.work_items)
    return LayerCost(cost.out_shape, 0, doubled, cost.bwd_data, None, cost.saved_elems * 2)


@layer_kinds.register("adaptive_avgpool2d")
def adaptive_avgpool2d(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    c, h, w = _image(shapes, "adaptive_avgpool2d")
    oh, ow = _pair(args["output_size"])
    n_in, n_out = batch * c * h * w, batch * c * oh * ow
    fwd = Work("pool", float(n_in), n_in, n_out, n_out)
    bwd = Work("pool", float(n_in), n_out, n_in, n_in)
    return LayerCost((c, oh, ow), 0, fwd, bwd, None, 0.0)


@layer_kinds.register("relu")
def relu(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    n = batch * _prod(shapes[0])
    # in-place (torchvision's ReLU(inplace=True)): the output replaces the input it saves
    fwd, bwd = elementwise(n, n, 1, n, "relu"), elementwise(2 * n, n, 1, n, "relu")
    return LayerCost(shapes[0], 0, fwd, bwd, None, 0.0)


@layer_kinds.register("relu6")
def relu6(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """min(max(x, 0), 6) (MobileNetV2's ReLU6(inplace=True), a hardtanh_/clamp kernel): the
    same in-place work as relu, and timed at the measured rate of relu's clamp kernel."""
    return relu(shapes, args, batch)


@layer_kinds.register("dropout")
def dropout(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    n = batch * _prod(shapes[0])
    fwd = Work("elementwise", 2.0 * n, n, n, n, extra_bytes=float(n), kernels=1)  # bool mask
    bwd = Work("elementwise", float(n), n, n, n, extra_bytes=float(n))
    return LayerCost(shapes[0], 0, fwd, bwd, None, 0.0, saved_extra_bytes=float(n), train_only=True)


@layer_kinds.register("stochastic_depth")
def stochastic_depth(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """torchvision's StochasticDepth (EfficientNet, ConvNeXt): in training each sample's
    residual branch is multiplied by 0 or 1 / (1 - p), one kernel each way (the per-sample
    noise is negligible); an identity in inference."""
    n = batch * _prod(shapes[0])
    fwd = elementwise(n, n, 1, n, "stochastic_depth")
    bwd = elementwise(n, n, 1, n, "stochastic_depth_bwd")
    return LayerCost(shapes[0], 0, fwd, bwd, None, 0.0, train_only=True)


@layer_kinds.register("batchnorm2d")
def batchnorm2d(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    c = shapes[0][0]
    n = batch * _prod(shapes[0])
    # training: cuDNN's NCHW kernels (bn_fw_tr_1C11 / bn_bw_1C11) reduce each channel in one
    # thread block, so a layer of few channels streams through few SMs (ctas = channels); each
    # reads its inputs twice (the statistics, then the normalisation: x; in the backward pass
    # the sums of dy and dy * x, then dx: x and dy), the second time from the L2 cache where
    # they fit in it (measured on the H200: 64-116 channels of 14x14 at batch 32 in 6 us,
    # 3x faster per byte than layers of 112x112)
    # The work items are the (sample, channel) planes: each block loops over its channel's
    # planes of H x W contiguous elements, and a plane costs its loop turn and its partial
    # sum beyond its bytes (measured: 7x7 planes run at a third of the bandwidth of 56x56)
    planes = batch * c
    fwd = Work("elementwise", 6.0 * n, 2 * n, n, planes, weight_read=2 * c,  # stats + normalise
               kernel="batchnorm", ctas=c, reread=n)
    bwd = Work("elementwise", 8.0 * n, 4 * n, n, planes, weight_read=2 * c, weight_write=2 * c,
               kernels=2, kernel="batchnorm_bwd", ctas=c, reread=2 * n)
    # eval mode: the running statistics, one affine pass (cuDNN's bn_fw_inf_1C11 in fp32,
    # PyTorch's batch_norm_transform_input for bf16), one block per channel too
    infer = Work("elementwise", 2.0 * n, n, n, planes, weight_read=4 * c,
                 kernel="batchnorm_infer", ctas=c)
    return LayerCost(shapes[0], 2 * c, fwd, bwd, None, float(n), fp32=False, infer_fwd=infer)


@layer_kinds.register("lcn")
def lcn(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """Local contrast normalisation: subtractive then divisive, over a k x k Gaussian window."""
    kh, kw = _pair(args.get("kernel", 5))
    n = batch * _prod(shapes[0])
    taps = kh * kw * shapes[0][0]
    fwd = Work("pool", 4.0 * n * taps, n, n, n, kernels=4)
    bwd = Work("pool", 8.0 * n * taps, 3 * n, n, n, kernels=4)
    return LayerCost(shapes[0], 0, fwd, bwd, None, 2.0 * n)


@layer_kinds.register("flatten")
def flatten(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    return LayerCost((_prod(shapes[0]),), 0, None, None, None, 0.0)  # a view: no kernel


@layer_kinds.register("add")
def add(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    if len(shapes) != 2 or shapes[0] != shapes[1]:
        raise ValueError(f"add needs two inputs of the same shape, got {shapes}")
    n = batch * _prod(shapes[0])
    # backward passes the gradient through to both inputs: no kernel of its own
    return LayerCost(shapes[0], 0, elementwise(2 * n, n, 1, n, "add"), None, None, 0.0)


@layer_kinds.register("softmax_cross_entropy")
def softmax_cross_entropy(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    n = batch * _prod(shapes[0])
    # a class distribution per token of a (seq, classes) output, else one per sample
    rows = batch * shapes[0][0] if len(shapes[0]) == 2 else batch
    fwd = Work("reduction", 5.0 * n, n, rows, rows, kernels=2)  # log_softmax + nll
    bwd = Work("elementwise", 3.0 * n, n, n, n, kernels=2)
    return LayerCost((1,), 0, fwd, bwd, None, float(n), fp32=True)
