"""The dataflow device kind `fpga` (accelerators/fpga.py): lanes from DSP slices, padding of
the unrolled blocks, the initiation interval from the layer's memories, invariants."""

from __future__ import annotations

import pytest

import simulator
from accelerators.fpga import FPGA, mac_utilisation
from hardware_models.catalog_io import device_kinds, make_device
from simulator.core import plugins
from workloads.ops import Gemm, Op


def _gemm_op(g: Gemm, dtype: str = "fp16") -> Op:
    e = 2 if dtype == "fp16" else 4
    read = e * g.batch * (g.m * g.k + g.k * g.n + g.m * g.n)
    return Op("g", "gemm", "task", "g", g.flops, read, e * g.m * g.n * g.batch, dtype, 1, gemm=g)


def test_fpga_is_a_registered_kind():
    assert plugins.hardware.get("fpga") is FPGA and "fpga" in device_kinds()


def test_lanes_come_from_the_dsp_slices():
    card = make_device("alveo-u280")
    spec = card.spec
    assert card.lanes("fp16") == int(spec.dsp_slices * spec.dsp_fraction / 2)
    assert card.lanes("fp32") < card.lanes("fp16")  # a float32 MAC takes more slices
    assert card.peak_flops("fp16") == 2 * card.lanes("fp16") * spec.clock_hz


def test_padding_of_the_unrolled_blocks():
    card = make_device("alveo-u280")
    lanes = card.lanes("fp16")
    assert mac_utilisation(card, Gemm(1024, 1, lanes)) == pytest.approx(1.0)
    assert mac_utilisation(card, Gemm(1024, 1, lanes + 1)) < 0.51  # a second, nearly empty block


def test_the_initiation_interval_rises_when_the_data_leave_the_chip():
    card = make_device("alveo-u250")
    small = _gemm_op(Gemm(256, 256, 256))
    large = _gemm_op(Gemm(16384, 16384, 16384))
    assert small.bytes <= card.spec.onchip_bytes < large.bytes
    assert card.initiation_interval(small, card.iterations(small)[0]) == 1
    ddr = card.spec.memory_bandwidth_bytes_per_s / card.spec.clock_hz
    thin = _gemm_op(Gemm(16384 * 64, 1, 1))  # one MAC per 3 operands: starved by DDR
    iters = card.iterations(thin)[0]
    assert card.initiation_interval(thin, iters) == pytest.approx(
        max(1, -(-thin.bytes / iters // ddr)))


def test_more_memory_bandwidth_is_never_slower():
    hbm, ddr = make_device("alveo-u280"), make_device("alveo-u250")
    op = _gemm_op(Gemm(4_194_304, 8, 8))
    assert op.bytes > ddr.spec.onchip_bytes
    assert hbm.op_cost(op).memory_s < ddr.op_cost(op).memory_s


def test_networks_and_task_graphs_run_on_an_fpga():
    r = simulator.predict("resnet50", "alveo-u280", batch=8, precision="bf16", mode="infer")
    assert r["status"] == "ok" and 0 < r["utilisation"] <= 1
    lu = simulator.predict("blocked_lu:n=2048,block=256,dtype=fp32", "alveo-u250")
    assert lu["status"] == "ok" and lu["step_time_s"] > 0
