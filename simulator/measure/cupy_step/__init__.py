"""Ground truth for the im2col graph: a real VGG16 training step built only from CuPy kernels.

`benchmarks/cupy_vgg16_step.py` times it on a GPU and `benchmarks/cupy_layer_kernels.py`
times its layer kernels alone; this package holds the code both run.

Modules:
- `reference_ops`: `NumpyOps`, every kernel of the step in numpy (reference; CPU stand-in).
- `cuda_kernels`: the CUDA sources of the hand-written kernels and `compile_kernels(cupy)`.
- `cupy_ops`: `CupyOps`, the same kernels as CuPy ElementwiseKernels, cuBLAS and ufuncs.
- `layout`: `Param` and `param_layout`: where each layer's weights sit in the flat buffers.
- `model`: `VGGStep`: parameters, buffers and data of the step, and `step()`.
- `passes`: `StepPass`, the forward and backward pass of one step, op by op.
- `timed`: `loss_check` and `time_config`: one configuration timed, phases and per-op.
- `checks`: `check_graph` (against the simulator's graph) and `self_test` (kernels vs numpy).
- `run`: `StepSettings` and `run_step_benchmark`: the whole measurement file.
- `layer_kernels`: `run_layer_kernels`: the step's own layer kernels, each timed alone.

The step is the graph that `build_graph(load_model("vgg16"), batch, "train", precision,
conv_algorithm="im2col")` describes, op for op and in the same order (`check_graph` compares
the two): per convolution an im2col kernel writing the (N*H*W, 9*C) patch matrix, a cuBLAS
GEMM with the weights and a bias-add kernel; in-place ReLU; 2x2 max pooling that keeps int64
argmax indices; the 7x7 adaptive average pool (an identity on a 7x7 input) as a copy kernel;
flatten (a view); linear layers (GEMM, then a bias add); dropout p=0.5 with a bool mask;
softmax cross-entropy in fp32; the backward pass in reverse order (conv: input-gradient GEMM
then a col2im gather kernel, skipped for the first conv; im2col recomputed for the
weight-gradient GEMM; bias gradient as a GEMM with a ones vector); SGD with momentum 0.9 on
fp32 master weights, one fused kernel over a flat parameter buffer. Activations are NHWC, so
every GEMM output is already the next layer's input layout and no transposes are needed.
The layers are those of workloads/models/vgg16.yaml (read by `simulator.measure.model_layers`).

Precision "fp32": everything float32; cuBLAS runs plain FP32 (CUPY_TF32 unset, no TF32).
Precision "fp16": mixed precision as the simulator's fp16 mode counts it: the fp32 input is
cast once, each layer's fp32 master weights are cast to an fp16 copy every step, activations
and GEMMs are fp16 (tensor cores, fp32 accumulation), the loss is computed in fp32, each
layer's fp16 weight gradient is cast back to fp32, and the optimizer runs in fp32. There is
no GradScaler: no loss scaling, unscale or inf check (the simulator counts those two passes).

Timing: random inputs already on the GPU; warm-up steps, then back-to-back steps with a CUDA
event between steps (as benchmarks/torch_vgg16.py does), median and min; per-phase times
(forward incl. loss, backward, update) from events inside each step; and one extra profiled
step with an event after every op, queued behind a spin kernel, so each op of the graph has
a measured time under its simulator name. Before timing, each configuration trains 5 steps
on its fixed batch and records whether the loss went down (a check that backward is wired
right); a separate 5-step check runs at batch 2 in fp32.

The array module can be numpy (`NumpyOps`, with a smaller image) to check shapes, the graph
and the loss without a GPU; tests/test_measure_cupy_step.py does so. Importing any module
here needs numpy alone: CuPy is imported when a `CupyOps` is made.
"""
