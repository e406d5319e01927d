"""A device entry for a machine the catalog does not have, written by `calibrate` from the
`device` block of the measurement files (what `measure` read from the machine) and the
options a user gives for what a machine cannot tell about itself.

    calibrate my-laptop.json --hardware my-laptop.yaml --out my-laptop.profile.yaml \
        --memory-bandwidth-gbs 51.2

Every value of the entry is listed under `sources:` (read from the machine, with the file)
or `assumptions:` (derived by a stated rule, or given as an option), so the entry reads as a
catalog entry does. It is validated by its kind's spec model before anything is written, and
an existing file is never rewritten: it is read as the device entry instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hardware_models.catalog_io import (
    YAML_SUFFIXES,
    link_names,
    load_device_file,
    load_spec,
    parse_spec,
)
from hardware_models.detect import cpu_flops_per_cycle, fp32_lanes_per_sm
from simulator.core.errors import UserError
from simulator.core.json_source import read_json_object

KERNEL_LAUNCH_S = 4.0e-6  # as the catalog's modern GPUs assume it (h100-sxm.yaml)
THREAD_FORK_JOIN_S = 5.0e-6  # as the catalog's CPUs assume it (one BLAS/OpenMP region)
DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16")


@dataclass(frozen=True)
class NewDeviceOptions:
    """What `calibrate` is told about a new machine (None / empty: read or derive it)."""

    name: str | None = None
    clock_ghz: float | None = None
    max_clock_ghz: float | None = None
    memory_bandwidth_gbs: float | None = None
    flops_per_cycle: dict[str, float] = field(default_factory=dict)
    peak_tflops: dict[str, float] = field(default_factory=dict)
    host_link: str | None = None

    def given(self) -> list[str]:
        """The options set, as the command line spells them."""
        flags = {"--name": self.name, "--clock-ghz": self.clock_ghz,
                 "--max-clock-ghz": self.max_clock_ghz,
                 "--memory-bandwidth-gbs": self.memory_bandwidth_gbs,
                 "--flops-per-cycle": self.flops_per_cycle, "--peak-tflops": self.peak_tflops,
                 "--host-link": self.host_link}
        return [flag for flag, value in flags.items() if value]


def options_from_cli(name: str | None = None, clock_ghz: str | None = None,
                     max_clock_ghz: str | None = None, memory_bandwidth_gbs: str | None = None,
                     flops_per_cycle: list[str] | None = None,
                     peak_tflops: list[str] | None = None,
                     host_link: str | None = None) -> NewDeviceOptions:
    """`calibrate`'s options for a new device entry, checked (one-line errors)."""
    def number(text: str | None, option: str) -> float | None:
        return None if text is None else positive(text, option)

    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise UserError(f"--name: '{name}': letters, digits, '.', '_' and '-' only, at most "
                        "64, starting with a letter or digit")
    if host_link is not None and host_link not in link_names():
        raise UserError(f"--host-link: '{host_link}' is not a catalog link (python -m "
                        "simulator list links)")
    return NewDeviceOptions(
        name=name, clock_ghz=number(clock_ghz, "--clock-ghz"),
        max_clock_ghz=number(max_clock_ghz, "--max-clock-ghz"),
        memory_bandwidth_gbs=number(memory_bandwidth_gbs, "--memory-bandwidth-gbs"),
        flops_per_cycle=parse_pairs(flops_per_cycle, "--flops-per-cycle", "N"),
        peak_tflops=parse_pairs(peak_tflops, "--peak-tflops", "TFLOPS"), host_link=host_link)


def parse_pairs(values: list[str] | None, option: str, unit: str) -> dict[str, float]:
    """`DTYPE=NUMBER` options (repeatable) as a dict; one-line errors."""
    out: dict[str, float] = {}
    for text in values or []:
        dtype, sep, number = text.partition("=")
        if not sep or dtype not in DTYPES:
            raise UserError(f"{option}: '{text}': write DTYPE={unit} with DTYPE one of "
                            f"{', '.join(DTYPES)}, e.g. {option} bf16=312")
        out[dtype] = positive(number, f"{option} {dtype}")
    return out


def positive(text: str | float, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{option}: '{text}' is not a number") from None
    if not 0 < value < float("inf"):
        raise UserError(f"{option}: must be a positive finite number, got {text}")
    return value


def _device_block(measurements: list[str]) -> tuple[dict[str, Any], str]:
    """The measured device (one for all files) and the file it was read from."""
    blocks = []
    for path in measurements:
        device = read_json_object(path, "kernel measurements").get("device")
        if not isinstance(device, dict) or device.get("kind") not in ("cpu", "gpu"):
            raise UserError(f"{path}: device: no measured CPU or GPU to write a device entry "
                            "from (files of `python -m simulator measure` have one)")
        blocks.append((device, path))
    names = sorted({str(d.get("name")) for d, _ in blocks})
    if len(names) > 1:
        raise UserError(f"{blocks[0][1]}: device: the files measured different devices "
                        f"({', '.join(names)}); a new entry is written from one device's files")
    return blocks[0]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "my-device"


class _Entry:
    """A device entry under construction, with its sources and assumptions."""

    def __init__(self, kind: str, name: str, display: str, source: str) -> None:
        self.data: dict[str, Any] = {"kind": kind, "name": name, "display_name": display}
        self.read: list[str] = []
        self.assumed: list[str] = []
        self.source = source

    def from_machine(self, key: str, value: Any, how: str) -> None:
        self.data[key] = value
        self.read.append(f"{key} = {value:g}: {how}" if isinstance(value, float)
                         else f"{key} = {value}: {how}")

    def given(self, key: str, value: Any, option: str) -> None:
        self.data[key] = value
        self.assumed.append(f"{key} = {value:g}: given as {option}" if isinstance(value, float)
                            else f"{key}: given as {option}")

    def finish(self) -> dict[str, Any]:
        self.data["sources"] = [f"{self.source} (its `device` block, as `python -m simulator "
                                f"measure` read the machine): " + "; ".join(self.read)]
        self.data["assumptions"] = self.assumed
        return self.data


def _need(value: float | None, option: str, what: str, path: Path) -> float:
    if value is None:
        raise UserError(f"{path}: {what} cannot be read from the measurements; give {option}")
    return value


def _cpu_entry(device: dict[str, Any], source: str, opts: NewDeviceOptions,
               path: Path) -> dict[str, Any]:
    e = _Entry("cpu", opts.name or _slug(path.stem), str(device.get("name") or path.stem), source)
    e.from_machine("cores", int(device["cores"]), "physical cores (/proc/cpuinfo core ids)")
    e.data["sockets"] = 1
    e.assumed.append("sockets = 1: the cores above are counted over all sockets")
    if opts.clock_ghz:
        e.given("clock_hz", opts.clock_ghz * 1e9, "--clock-ghz")
    else:
        e.from_machine("clock_hz", float(_need(device.get("clock_hz"), "--clock-ghz",
                                                "the CPU's clock", path)),
                       "/proc/cpuinfo 'cpu MHz' of the first CPU")
    if opts.max_clock_ghz:
        e.given("max_clock_hz", opts.max_clock_ghz * 1e9, "--max-clock-ghz")
    elif device.get("max_clock_hz"):
        e.from_machine("max_clock_hz", float(device["max_clock_hz"]), "cpufreq cpuinfo_max_freq")
    else:
        e.assumed.append("no max_clock_hz: none was read (no cpufreq, as in most virtual "
                         "machines), so peaks are at clock_hz; if the cores turbo, give "
                         "--max-clock-ghz, else fitted efficiencies reach their bound of 1")
    table, rules = cpu_flops_per_cycle(list(device.get("simd") or []))
    for dtype, flops in opts.flops_per_cycle.items():
        table[dtype] = flops
        rules = [r for r in rules if not r.startswith(f"{dtype} =")]
        rules.append(f"{dtype} = {flops:g} FLOPs per cycle per core: given as --flops-per-cycle")
    if "fp32" not in table:
        raise UserError(f"{path}: flops_per_cycle_per_core: no SIMD flag read gives the fp32 "
                        "FLOPs per cycle; give --flops-per-cycle fp32=N (e.g. 32 for AVX2 FMA)")
    e.data["flops_per_cycle_per_core"] = {k: table[k] for k in DTYPES if k in table}
    e.assumed.extend(rules)
    e.from_machine("memory_bytes", float(device["memory_bytes"]), "/proc/meminfo MemTotal")
    bandwidth = _need(opts.memory_bandwidth_gbs, "--memory-bandwidth-gbs (the DRAM's: "
                      "channels x MT/s x 8 bytes)", "a CPU's memory bandwidth", path)
    e.given("memory_bandwidth_bytes_per_s", bandwidth * 1e9, "--memory-bandwidth-gbs")
    if device.get("cache_bytes"):
        e.from_machine("cache_bytes", float(device["cache_bytes"]),
                       "the largest cache of the first CPU in sysfs")
    e.data["thread_fork_join_s"] = THREAD_FORK_JOIN_S
    e.assumed.append(f"thread_fork_join_s = {THREAD_FORK_JOIN_S:g} s is assumed (one "
                     "BLAS/OpenMP parallel region); the profile fits its own")
    return e.finish()


def _gpu_entry(device: dict[str, Any], source: str, opts: NewDeviceOptions,
               path: Path) -> dict[str, Any]:
    e = _Entry("gpu", opts.name or _slug(path.stem), str(device.get("name") or path.stem), source)
    smi = device.get("nvidia_smi") or {}
    sms = int(_need(device.get("sm_count"), "a device file with sm_count", "the SM count", path))
    e.from_machine("sms", sms, "cudaDevAttrMultiProcessorCount")
    cc = str(device.get("compute_capability"))
    lanes = fp32_lanes_per_sm(cc)
    if lanes is None:
        raise UserError(f"{path}: device: compute capability {cc} has no FP32 lanes per SM "
                        "in hardware_models/detect.py; write the entry by hand (docs/plugins.md)")
    e.data["cores_per_sm"] = lanes
    e.assumed.append(f"cores_per_sm = {lanes}: FP32 lanes per SM of compute capability {cc} "
                     "(CUDA C++ Programming Guide, arithmetic instruction throughput)")
    if opts.clock_ghz:
        e.given("clock_hz", opts.clock_ghz * 1e9, "--clock-ghz")
    elif device.get("clock_mhz") or smi.get("clocks.max.sm"):
        mhz = float(device.get("clock_mhz") or smi["clocks.max.sm"])
        e.from_machine("clock_hz", mhz * 1e6, "the highest SM clock (cudaDevAttrClockRate, "
                       "nvidia-smi clocks.max.sm)")
    else:
        _need(None, "--clock-ghz", "the GPU's boost clock", path)
    e.from_machine("memory_bytes", float(device["memory_bytes"]), "the device's total memory")
    if opts.memory_bandwidth_gbs:
        e.given("memory_bandwidth_bytes_per_s", opts.memory_bandwidth_gbs * 1e9,
                "--memory-bandwidth-gbs")
    elif device.get("memory_clock_mhz") and device.get("memory_bus_width_bits"):
        bus_bytes = float(device["memory_bus_width_bits"]) / 8
        bandwidth = 2 * float(device["memory_clock_mhz"]) * 1e6 * bus_bytes
        e.from_machine("memory_bandwidth_bytes_per_s", bandwidth, "2 transfers per memory "
                       "clock x the bus width (cudaDevAttrMemoryClockRate, GlobalMemoryBusWidth)")
    else:
        _need(None, "--memory-bandwidth-gbs", "the GPU's memory bandwidth", path)
    e.from_machine("l2_bytes", float(_need(device.get("l2_bytes"), "a file with l2_bytes "
                                           "(measure --backend cupy)", "the L2 size", path)),
                   "cudaDevAttrL2CacheSize")
    fp32 = sms * lanes * 2 * e.data["clock_hz"]
    peaks = {"fp32": fp32}
    e.assumed.append(f"peak_flops fp32 = {fp32:.4g}: SMs x FP32 lanes x 2 (FMA) x clock")
    for dtype, tflops in opts.peak_tflops.items():
        peaks[dtype] = tflops * 1e12
        e.assumed.append(f"peak_flops {dtype} = {tflops:g} TFLOP/s: given as --peak-tflops")
    if len(peaks) == 1:
        e.assumed.append("no tensor-core peak was given (--peak-tflops): every dtype runs at "
                         "the FP32 peak")
    e.data["peak_flops"] = {k: peaks[k] for k in DTYPES if k in peaks}
    e.data["kernel_launch_s"] = KERNEL_LAUNCH_S
    e.assumed.append(f"kernel_launch_s = {KERNEL_LAUNCH_S:g} s is assumed for a modern GPU "
                     "with a modern driver; the profile fits the framework's own")
    if opts.host_link:
        e.given("host_link", opts.host_link, "--host-link")
    else:
        link = f"pcie{smi.get('pcie.link.gen.max')}-x{smi.get('pcie.link.width.max')}"
        if link not in link_names():
            raise UserError(f"{path}: host_link: the PCIe link read ({link}) is not a catalog "
                            "link; give --host-link (python -m simulator list links)")
        e.from_machine("host_link", link, "nvidia-smi pcie.link.gen.max and width.max")
    if smi.get("power.limit"):
        e.from_machine("tdp_w", positive(smi["power.limit"], "power.limit"),
                       "nvidia-smi power.limit")
    return e.finish()


@dataclass(frozen=True)
class CalibrationTarget:
    """The device a calibration is for, and the entry to write with the profile (if new)."""

    spec: Any
    entry_path: Path | None = None
    entry_yaml: str | None = None


def calibration_target(hardware: str, measurements: list[str],
                       opts: NewDeviceOptions) -> CalibrationTarget:
    """`--hardware` as calibrate reads it: a catalog name, an existing device entry (a path),
    or a path that does not exist yet, for which an entry is built (not yet written)."""
    if not hardware.endswith(YAML_SUFFIXES):
        if opts.given():
            raise UserError(f"{', '.join(opts.given())}: only build a new device entry "
                            f"(--hardware NEW.yaml); '{hardware}' is a catalog device")
        return CalibrationTarget(load_spec(hardware))
    path = Path(hardware)
    if path.exists():
        if opts.given():
            raise UserError(f"{path}: exists and is read as the device entry, never rewritten; "
                            f"{', '.join(opts.given())} only build a new one (give a new path)")
        return CalibrationTarget(load_device_file(path))
    if not path.parent.is_dir():
        raise UserError(f"{path}: its folder {path.parent} does not exist")
    device, source = _device_block(measurements)
    build = _cpu_entry if device["kind"] == "cpu" else _gpu_entry
    try:
        entry = build(device, Path(source).name, opts, path)
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{source}: device: {err} is missing or not a number (the block "
                        "`measure` writes)") from None
    spec = parse_spec(entry, str(path))  # the kind's own validation, before anything is written
    header = (f"# A device entry written by `python -m simulator calibrate` from {source}\n"
              "# (sources: what the machine reported; assumptions: what was derived or given).\n")
    return CalibrationTarget(spec, path, header + yaml.safe_dump(entry, sort_keys=False))
