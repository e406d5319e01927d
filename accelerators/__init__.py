"""Device kinds beyond CPUs and GPUs, shipped as a plugin package: `tpu` (a systolic-array
accelerator, `accelerators.tpu`) and `fpga` (a dataflow accelerator, `accelerators.fpga`).

They reach the simulator exactly as a third party's would: through the `simulator.hardware`
entry points in pyproject.toml, using only the public interfaces of docs/plugins.md. Their
catalog entries live in `accelerators/catalog/` and are found through each kind's `catalog`
attribute (`--hardware tpu-v4`).
"""
