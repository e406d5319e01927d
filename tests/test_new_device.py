"""`calibrate` on a machine the catalog does not have: a device entry written from the
measured device block and the options, and a profile that names it by path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hardware_models.catalog_io import load_spec, make_device
from hardware_models.detect import cpu_flops_per_cycle, fp32_lanes_per_sm
from simulator.calibrate.device import calibrate_profile
from simulator.calibrate.measured_ops import load_measurements
from simulator.calibrate.new_device import NewDeviceOptions, calibration_target
from simulator.core.errors import UserError
from simulator.measure import provenance

ROOT = Path(__file__).resolve().parents[1]
CPU_FILE = ROOT / "measurements" / "local-cpu-numpy.json"
GPU_FILE = ROOT / "measurements" / "h100-sxm-cupy.json"
# what this project's CI CPU's catalog entry (epyc-zen4-2vcpu.yaml) says beyond its file
EPYC_OPTIONS = ["--max-clock-ghz", "3.7", "--memory-bandwidth-gbs", "25",
                "--flops-per-cycle", "fp32=32", "--flops-per-cycle", "fp64=16",
                "--flops-per-cycle", "bf16=64"]


def _small_cpu_file(tmp_path: Path, **device: object) -> Path:
    """The CI CPU's numpy file cut to its one-thread elementwise kernels, launch and a few
    GEMMs (a fit in a second), its device block as today's `measure` writes it."""
    data = json.loads(CPU_FILE.read_text())
    gemms = [r for r in data["records"] if r["op"] == "gemm" and r["threads"] == 1][:12]
    data["records"] = gemms + [r for r in data["records"] if r["threads"] == 1 and r["op"] in
                               ("relu", "add", "launch") and r["dtype"] == "fp32"]
    data["device"].update({"clock_hz": 2.596e9, "cache_bytes": 33.5e6, **device})
    path = tmp_path / "my-cpu.json"
    path.write_text(json.dumps(data))
    return path


def _calibrate(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", "calibrate", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, check=False)


def test_a_new_cpu_entry_is_the_catalog_entry_it_was_measured_as(tmp_path: Path) -> None:
    measured = _small_cpu_file(tmp_path)
    (tmp_path / "prof").mkdir()
    done = _calibrate(measured, "--hardware", "my-cpu.yaml", "--out", "prof/my-cpu.profile.yaml",
                      *EPYC_OPTIONS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    entry = yaml.safe_load((tmp_path / "my-cpu.yaml").read_text())
    catalog = load_spec("epyc-zen4-2vcpu")
    for key in ("cores", "clock_hz", "max_clock_hz", "flops_per_cycle_per_core",
                "memory_bandwidth_bytes_per_s", "cache_bytes", "thread_fork_join_s"):
        assert entry[key] == getattr(catalog, key), key
    assert entry["name"] == "my-cpu" and entry["display_name"] == "AMD EPYC"
    assert any("cpuinfo" in s for s in entry["sources"])
    profile = yaml.safe_load((tmp_path / "prof" / "my-cpu.profile.yaml").read_text())
    assert profile["device"] == "my-cpu" and profile["device_file"] == "../my-cpu.yaml"
    # the same fit as against the catalog's entry of the same numbers
    same = calibrate_profile(load_measurements([measured]), "epyc-zen4-2vcpu")
    labels = ("device", "device_file", "fitted_from", "fit_error")
    assert {k: v for k, v in profile.items() if k not in labels} == {
        k: v for k, v in same.model_dump(mode="json").items() if k not in labels}
    assert profile["gemm_efficiency"]["fp32"] < 1.0  # a fit, not the bound
    # usable by path: the profile with its entry, the entry with transferred efficiencies
    ours = make_device(str(tmp_path / "prof" / "my-cpu.profile.yaml"), framework="numpy")
    assert ours.spec.name == "my-cpu" and ours.profile.origin == "calibrated"
    borrowed = make_device(str(tmp_path / "my-cpu.yaml"), framework="numpy")
    assert borrowed.profile.origin.startswith("transferred")


def test_an_existing_entry_is_read_never_rewritten(tmp_path: Path) -> None:
    measured = _small_cpu_file(tmp_path)
    entry = tmp_path / "mine.yaml"
    entry.write_text(yaml.safe_dump({**load_spec("epyc-zen4-2vcpu").model_dump(), "name": "mine"}))
    before = entry.read_bytes()
    refused = _calibrate(measured, "--hardware", entry, "--out", tmp_path / "p.yaml",
                         "--memory-bandwidth-gbs", "30", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "never rewritten" in refused.stderr and not (tmp_path / "p.yaml").exists()
    done = _calibrate(measured, "--hardware", entry, "--out", tmp_path / "p.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert entry.read_bytes() == before
    assert yaml.safe_load((tmp_path / "p.yaml").read_text())["device"] == "mine"


@pytest.mark.parametrize(("args", "says"), [
    ([], "--memory-bandwidth-gbs"),
    (["--memory-bandwidth-gbs", "inf"], "positive finite"),
    (["--memory-bandwidth-gbs", "25", "--flops-per-cycle", "int8=4"], "DTYPE=N"),
    (["--memory-bandwidth-gbs", "25", "--peak-tflops", "bf16"], "DTYPE=TFLOPS"),
    (["--memory-bandwidth-gbs", "25", "--host-link", "warp-drive"], "not a catalog link"),
    (["--memory-bandwidth-gbs", "25", "--name", "../x"], "--name"),
])
def test_bad_new_device_options_are_one_line_and_write_nothing(
        tmp_path: Path, args: list[str], says: str) -> None:
    _refused(tmp_path, "new.profile.yaml", args, says)


def test_the_profile_may_not_be_written_over_the_new_entry(tmp_path: Path) -> None:
    _refused(tmp_path, "new.yaml", ["--memory-bandwidth-gbs", "25"], "file of its own")


def test_a_file_calibrate_did_not_write_is_never_overwritten(tmp_path: Path) -> None:
    measured = _small_cpu_file(tmp_path)
    mine = tmp_path / "thesis.yaml"
    mine.write_text("chapter: 1\n")
    done = _calibrate(measured, "--hardware", "epyc-zen4-2vcpu", "--out", mine, cwd=tmp_path)
    assert done.returncode == 2 and "never overwritten" in done.stderr
    assert mine.read_text() == "chapter: 1\n"
    ours = tmp_path / "ours.yaml"
    for _ in range(2):  # a profile it wrote is its to rewrite
        again = _calibrate(measured, "--hardware", "epyc-zen4-2vcpu", "--out", ours, cwd=tmp_path)
        assert again.returncode == 0, again.stderr


def _refused(tmp_path: Path, out: str, args: list[str], says: str) -> None:
    measured = _small_cpu_file(tmp_path)
    done = _calibrate(measured, "--hardware", "new.yaml", "--out", out, *args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-cpu.json"]


def test_options_that_build_an_entry_are_refused_for_a_catalog_device(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="catalog device"):
        calibration_target("epyc-zen4-2vcpu", [], NewDeviceOptions(clock_ghz=3.0))


def test_a_gpu_entry_from_a_cupy_file_is_the_catalog_h100(tmp_path: Path) -> None:
    target = calibration_target(str(tmp_path / "my-h100.yaml"), [str(GPU_FILE)],
                                NewDeviceOptions(peak_tflops={"bf16": 989.4}))
    catalog = load_spec("h100-sxm")
    spec = target.spec
    assert (spec.sms, spec.cores_per_sm, spec.host_link, spec.tdp_w) == (
        catalog.sms, catalog.cores_per_sm, catalog.host_link, catalog.tdp_w)
    assert spec.clock_hz == catalog.clock_hz and spec.l2_bytes == catalog.l2_bytes
    assert spec.memory_bandwidth_bytes_per_s == pytest.approx(
        catalog.memory_bandwidth_bytes_per_s, rel=0.001)
    assert spec.peak_flops["fp32"] == pytest.approx(catalog.peak_flops["fp32"], rel=0.001)
    assert spec.peak_flops["bf16"] == 989.4e12 and "tf32" not in spec.peak_flops
    assert not (tmp_path / "my-h100.yaml").exists()  # written with the profile, not before


def test_a_gpu_file_without_the_memory_bus_asks_for_the_bandwidth(tmp_path: Path) -> None:
    data = json.loads(GPU_FILE.read_text())
    del data["device"]["memory_bus_width_bits"]
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="--memory-bandwidth-gbs"):
        calibration_target(str(tmp_path / "g.yaml"), [str(path)], NewDeviceOptions())


def test_a_profile_whose_device_file_is_gone_says_so(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    data = load_spec_profile_dump()
    profile.write_text(yaml.safe_dump({**data, "device": "gone", "device_file": "gone.yaml"}))
    with pytest.raises(UserError, match="device_file: .*gone.yaml does not exist"):
        make_device(str(profile))


def load_spec_profile_dump() -> dict[str, object]:
    from hardware_models.catalog_io import catalog_profile

    profile = catalog_profile("h100-sxm")
    assert profile is not None
    return profile.model_dump(mode="json")


def test_spec_sheet_ignores_a_profile_given_by_path(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump(load_spec_profile_dump()))
    by_path = make_device(str(profile), spec_sheet=True)
    by_name = make_device("h100-sxm", spec_sheet=True)
    assert by_path.profile == by_name.profile and by_path.profile.origin == "spec-sheet"


def test_simd_flags_read_as_flops_per_cycle() -> None:
    emr, _ = cpu_flops_per_cycle(["avx", "avx2", "fma", "avx512f", "avx512_bf16",
                                  "avx512_fp16", "amx_bf16"])
    assert emr == {"fp32": 64.0, "fp64": 32.0, "bf16": 1024.0, "fp16": 128.0}
    assert load_spec("xeon-emr-16vcpu").flops_per_cycle_per_core == emr  # as the catalog says
    laptop, why = cpu_flops_per_cycle(["sse4_2", "avx", "avx2", "fma", "f16c"])
    assert laptop == {"fp32": 32.0, "fp64": 16.0} and len(why) == 2
    assert cpu_flops_per_cycle(["mmx"]) == ({}, [])
    assert fp32_lanes_per_sm("8.0") == 64 and fp32_lanes_per_sm("1.0") is None


def test_cpu_clock_and_cache_are_read_from_sysfs(tmp_path: Path) -> None:
    cpu0 = tmp_path / "cpu0"
    (cpu0 / "cpufreq").mkdir(parents=True)
    (cpu0 / "cpufreq" / "cpuinfo_max_freq").write_text("4700000\n")
    for index, size in enumerate(("48K", "1280K", "24576K")):
        (cpu0 / "cache" / f"index{index}").mkdir(parents=True)
        (cpu0 / "cache" / f"index{index}" / "size").write_text(size + "\n")
    assert provenance._sysfs_cpu(str(cpu0)) == {"max_clock_hz": 4.7e9,
                                                "cache_bytes": 24576 * 1024}
    assert provenance._sysfs_cpu(str(tmp_path / "none")) == {}


def test_entries_from_the_h200_machines_files_are_its_catalog_entries(tmp_path: Path) -> None:
    """measure's files from the lent H200 machine (2026-12-02): the GPU's CuPy file and its
    host's numpy file give the entries the catalog holds for them (h200, xeon-emr-16vcpu)."""
    gpu = calibration_target(str(tmp_path / "gpu.yaml"),
                             [str(ROOT / "measurements" / "h200-cupy-quick.json")],
                             NewDeviceOptions()).spec
    h200 = load_spec("h200")
    assert (gpu.sms, gpu.cores_per_sm, gpu.clock_hz, gpu.host_link) == (
        h200.sms, h200.cores_per_sm, h200.clock_hz, h200.host_link)
    assert gpu.memory_bandwidth_bytes_per_s == pytest.approx(
        h200.memory_bandwidth_bytes_per_s, rel=0.005)  # 6,016 bits at 3,201 MHz: 4.81 TB/s
    assert gpu.peak_flops["fp32"] == pytest.approx(h200.peak_flops["fp32"], rel=0.001)
    cpu = calibration_target(str(tmp_path / "cpu.yaml"),
                             [str(ROOT / "measurements" / "h200-host-numpy.json")],
                             NewDeviceOptions(memory_bandwidth_gbs=102.4)).spec
    emr = load_spec("xeon-emr-16vcpu")
    assert (cpu.cores, cpu.clock_hz, cpu.max_clock_hz) == (emr.cores, emr.clock_hz, None)
    assert cpu.flops_per_cycle_per_core == emr.flops_per_cycle_per_core
    assert cpu.cache_bytes == pytest.approx(emr.cache_bytes, rel=0.001)
    assert cpu.memory_bytes == pytest.approx(emr.memory_bytes, rel=0.001)
