"""What each sweep times: sizes, batches and dtypes per backend, full or quick.

"tf32" entries are timed by the CuPy worker that runs with CUPY_TF32=1, "bf16" GEMMs by a
worker of their own; the default worker takes the rest. The full numpy sweep stays within a
few minutes on a small CPU (numpy float16 matrix products have no BLAS path, so they are timed
on a few small squares only); the CuPy sweep covers the ranges a GPU needs. `quick` is a
seconds-long sweep for the tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    square_sizes: tuple[int, ...]
    low_precision_square_max: int  # largest square timed in fp16/bf16 on this backend
    gemm_dtypes: tuple[str, ...]
    shaped_gemm_dtypes: tuple[str, ...]  # dtypes for the VGG16 conv/FC shapes
    conv_gemm_layers: tuple[str, ...]
    conv_gemm_batches: tuple[int, ...]
    fc_layers: tuple[str, ...]
    fc_batches: tuple[int, ...]
    conv_layers: tuple[str, ...]  # convolutions timed whole (im2col + GEMM)
    conv_batch: int
    conv_dtypes: tuple[str, ...]
    elementwise_log2: tuple[int, ...]
    elementwise_dtypes: tuple[str, ...]
    pool_layers: tuple[str, ...]
    pool_batches: tuple[int, ...]
    copy_sizes: tuple[int, ...]
    max_rep_s: float  # skip a GEMM whose predicted time exceeds this


_DISTINCT = (
    "conv1_1",
    "conv1_2",
    "conv2_1",
    "conv2_2",
    "conv3_1",
    "conv3_2",
    "conv4_1",
    "conv4_2",
    "conv5_1",
)
_CONV_WHOLE = ("conv1_1", "conv1_2", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
_POOLS = ("pool1", "pool2", "pool3", "pool4", "pool5")
_FCS = ("fc6", "fc7", "fc8")

NUMPY_FULL = Plan(
    square_sizes=(128, 256, 512, 1024, 2048, 4096),
    low_precision_square_max=256,
    gemm_dtypes=("fp32", "fp16", "fp64"),
    shaped_gemm_dtypes=("fp32",),
    conv_gemm_layers=_DISTINCT,
    conv_gemm_batches=(1, 8),
    fc_layers=_FCS,
    fc_batches=(1, 16, 64),
    conv_layers=_CONV_WHOLE,
    conv_batch=8,
    conv_dtypes=("fp32",),
    elementwise_log2=tuple(range(10, 27, 2)),
    elementwise_dtypes=("fp32", "fp16"),
    pool_layers=_POOLS,
    pool_batches=(16,),
    copy_sizes=(),
    max_rep_s=2.0,
)
NUMPY_QUICK = Plan(
    square_sizes=(64, 128),
    low_precision_square_max=64,
    gemm_dtypes=("fp32", "fp16", "fp64"),
    shaped_gemm_dtypes=("fp32",),
    conv_gemm_layers=("conv5_1",),
    conv_gemm_batches=(1,),
    fc_layers=("fc8",),
    fc_batches=(1,),
    conv_layers=("conv5_1",),
    conv_batch=1,
    conv_dtypes=("fp32",),
    elementwise_log2=(10, 14),
    elementwise_dtypes=("fp32", "fp16"),
    pool_layers=("pool5",),
    pool_batches=(1,),
    copy_sizes=(),
    max_rep_s=0.5,
)
CUPY_FULL = Plan(
    square_sizes=(128, 256, 512, 1024, 2048, 4096, 8192),
    low_precision_square_max=8192,
    gemm_dtypes=("fp32", "tf32", "fp16", "bf16", "fp64"),
    shaped_gemm_dtypes=("fp32", "tf32", "fp16", "bf16"),
    conv_gemm_layers=_DISTINCT,
    conv_gemm_batches=(1, 16, 64),
    fc_layers=_FCS,
    fc_batches=(1, 16, 64),
    conv_layers=_CONV_WHOLE,
    conv_batch=16,
    conv_dtypes=("fp32", "tf32", "fp16"),
    elementwise_log2=tuple(range(10, 29)),
    elementwise_dtypes=("fp32", "fp16"),
    pool_layers=_POOLS,
    pool_batches=(16, 64),
    copy_sizes=tuple(4096 * 4**i for i in range(10)),  # 4 KiB .. 1 GiB
    max_rep_s=float("inf"),
)
CUPY_QUICK = Plan(
    square_sizes=(128, 256),
    low_precision_square_max=256,
    gemm_dtypes=("fp32", "tf32", "fp16", "bf16", "fp64"),
    shaped_gemm_dtypes=("fp32", "tf32"),
    conv_gemm_layers=("conv5_1",),
    conv_gemm_batches=(1,),
    fc_layers=("fc8",),
    fc_batches=(1,),
    conv_layers=("conv5_1",),
    conv_batch=1,
    conv_dtypes=("fp32", "tf32"),
    elementwise_log2=(10, 16),
    elementwise_dtypes=("fp32", "fp16"),
    pool_layers=("pool5",),
    pool_batches=(1,),
    copy_sizes=(4096, 1 << 20),
    max_rep_s=float("inf"),
)


def plan_for(backend: str, quick: bool) -> Plan:
    if backend == "numpy":
        return NUMPY_QUICK if quick else NUMPY_FULL
    return CUPY_QUICK if quick else CUPY_FULL
