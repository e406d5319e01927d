"""Precision modes: which dtype the matrix math runs in and how many bytes tensors take.

`fp32` is PyTorch's default: convolutions may run on TF32 tensor cores
(torch.backends.cudnn.allow_tf32 is True by default) while matrix products stay in fp32;
`fp32-strict` turns TF32 off everywhere, `tf32` turns it on everywhere.
`bf16` and `fp16` are mixed precision the way torch.autocast does it: convolutions and
matrix products run in the low dtype on low-precision copies of the weights, activations
are stored in the low dtype, master weights, gradients and optimizer state stay in fp32,
and the casts are counted. fp16 training adds GradScaler's unscale and inf check.
Precisions are plugins (registry `precision`, entry-point group `simulator.precision`): a
plugin registers a `Precision` instance under its name (docs/plugins.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.core import plugins
from simulator.core.registry import Registry


@dataclass(frozen=True)
class Precision:
    name: str
    gemm_dtype: str
    act_bytes: int
    mixed: bool
    grad_scaler: bool = False
    conv_dtype: str = ""  # convolutions' math, where it differs from gemm_dtype

    master_bytes: int = 4  # fp32 master weights, gradients and optimizer state

    @property
    def lowp_bytes(self) -> int:
        return 2 if self.mixed else self.master_bytes


PRECISIONS: Registry[Precision] = plugins.precision  # read-only mapping: PRECISIONS[name], in

FP32 = Precision("fp32", "fp32", 4, mixed=False, conv_dtype="tf32")
FP32_STRICT = Precision("fp32-strict", "fp32", 4, mixed=False)
TF32 = Precision("tf32", "tf32", 4, mixed=False)
BF16 = Precision("bf16", "bf16", 2, mixed=True)
FP16 = Precision("fp16", "fp16", 2, mixed=True, grad_scaler=True)
for _builtin in (FP32, FP32_STRICT, TF32, BF16, FP16):
    PRECISIONS.add(_builtin.name, _builtin)


def get_precision(name: str) -> Precision:
    """The precision called `name`; an unknown name is a UserError listing the valid ones."""
    return PRECISIONS.get(name)
