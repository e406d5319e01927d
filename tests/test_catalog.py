"""The hardware catalog: every YAML file loads, validates, cites sources and holds golden facts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hardware_models.spec import CPUSpec, GPUSpec, LinkSpec

ROOT = Path(__file__).resolve().parents[1]

CATALOG = ROOT / "hardware_models" / "catalog"
DEVICE_DIR = CATALOG / "devices"
LINK_DIR = CATALOG / "links"

REQUIRED_CPUS = {"i7-10510u", "i7-10700", "xeon-e5-2670", "xeon-e5-2630v3", "xeon-x5650"}
REQUIRED_GPUS = {
    "gt-740m",
    "940mx",
    "gtx-680",
    "gtx-1080",
    "titan-x-maxwell",
    "k40",
    "v100-sxm2",
    "a100-sxm4",
    "h100-sxm",
    "h100-pcie",
    "h200",
}
REQUIRED_LINKS = {
    "pcie3-x8",
    "pcie3-x16",
    "pcie4-x16",
    "pcie5-x16",
    "nvlink3",
    "nvlink4",
    "ib-fdr",
    "ib-edr",
    "ib-hdr",
    "ib-ndr",
    "eth-1g",
    "eth-10g",
    "eth-100g",
}

# Fields typed as floats in spec.py. PyYAML reads `66.9e12` (no sign in the exponent) as a
# string and pydantic would quietly coerce it, so the raw YAML is checked here too.
FLOAT_FIELDS = {
    "clock_hz",
    "memory_bytes",
    "memory_bandwidth_bytes_per_s",
    "cache_bytes",
    "thread_fork_join_s",
    "tdp_w",
    "price_usd",
    "l2_bytes",
    "kernel_launch_s",
    "bandwidth_bytes_per_s",
    "latency_s",
}
DICT_FLOAT_FIELDS = {"flops_per_cycle_per_core", "peak_flops"}


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml"))


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict), f"{path.name}: top level is not a mapping"
    return data


def _device(data: dict) -> CPUSpec | GPUSpec:
    kind = data.get("kind")
    if kind == "cpu":
        return CPUSpec.model_validate(data)
    if kind == "gpu":
        return GPUSpec.model_validate(data)
    raise AssertionError(f"device kind must be 'cpu' or 'gpu', got {kind!r}")


DEVICE_FILES = _yaml_files(DEVICE_DIR)
LINK_FILES = _yaml_files(LINK_DIR)


def devices() -> dict[str, CPUSpec | GPUSpec]:
    return {p.stem: _device(_load(p)) for p in DEVICE_FILES}


def links() -> dict[str, LinkSpec]:
    return {p.stem: LinkSpec.model_validate(_load(p)) for p in LINK_FILES}


# ---------------------------------------------------------------- every file


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: p.name)
def test_device_file_validates(path: Path) -> None:
    data = _load(path)
    spec = _device(data)
    assert spec.name == path.stem, f"file name {path.name} != name {spec.name!r}"
    assert len(spec.sources) >= 1
    assert all(isinstance(s, str) and s.strip() for s in spec.sources)
    assert all(isinstance(a, str) and a.strip() for a in spec.assumptions)


@pytest.mark.parametrize("path", LINK_FILES, ids=lambda p: p.name)
def test_link_file_validates(path: Path) -> None:
    data = _load(path)
    assert data.get("kind", "link") == "link"
    spec = LinkSpec.model_validate(data)
    assert spec.name == path.stem, f"file name {path.name} != name {spec.name!r}"
    assert len(spec.sources) >= 1
    assert all(isinstance(s, str) and s.strip() for s in spec.sources)


@pytest.mark.parametrize("path", DEVICE_FILES + LINK_FILES, ids=lambda p: p.name)
def test_numbers_load_as_numbers(path: Path) -> None:
    data = _load(path)
    for key, value in data.items():
        if key in FLOAT_FIELDS:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (
                f"{path.name}: {key} = {value!r} is not a number (write 1.0e+9, not 1e9)"
            )
        if key in DICT_FLOAT_FIELDS:
            for dtype, v in value.items():
                assert isinstance(v, (int, float)) and not isinstance(v, bool), (
                    f"{path.name}: {key}.{dtype} = {v!r} is not a number"
                )


# ---------------------------------------------------------------- the catalog as a whole


def test_required_names_exist() -> None:
    devs = devices()
    cpus = {n for n, d in devs.items() if isinstance(d, CPUSpec)}
    gpus = {n for n, d in devs.items() if isinstance(d, GPUSpec)}
    assert REQUIRED_CPUS <= cpus, f"missing CPUs: {REQUIRED_CPUS - cpus}"
    assert REQUIRED_GPUS <= gpus, f"missing GPUs: {REQUIRED_GPUS - gpus}"
    assert REQUIRED_LINKS <= set(links()), f"missing links: {REQUIRED_LINKS - set(links())}"


def test_gpu_host_links_exist() -> None:
    link_names = set(links())
    for name, dev in devices().items():
        if isinstance(dev, GPUSpec):
            assert dev.host_link in link_names, f"{name}: unknown host_link {dev.host_link!r}"


def test_tf32_bf16_only_on_ampere_and_later() -> None:
    ampere_plus = {"a100-sxm4", "h100-sxm", "h100-pcie", "h200"}
    for name, dev in devices().items():
        if isinstance(dev, GPUSpec) and name not in ampere_plus:
            assert "tf32" not in dev.peak_flops and "bf16" not in dev.peak_flops, name


def test_gpu_peaks_match_cores_times_clock() -> None:
    """fp32 peak = cores x 2 (FMA) x clock_hz, within vendor rounding."""
    for name, dev in devices().items():
        if isinstance(dev, GPUSpec):
            derived = dev.total_cores * 2 * dev.clock_hz
            assert dev.peak_flops["fp32"] == pytest.approx(derived, rel=0.01), name


# ---------------------------------------------------------------- golden facts


def test_golden_h100_sxm() -> None:
    h100 = devices()["h100-sxm"]
    assert isinstance(h100, GPUSpec)
    assert h100.sms == 132
    assert h100.total_cores == h100.sms * h100.cores_per_sm == 16_896
    assert h100.peak_flops["fp32"] == pytest.approx(66.9e12)
    assert h100.peak_flops["bf16"] == pytest.approx(989.4e12)
    assert h100.host_link == "pcie5-x16"


def test_golden_gtx_680_and_coates_cluster() -> None:
    gtx680 = devices()["gtx-680"]
    assert isinstance(gtx680, GPUSpec)
    assert gtx680.total_cores == 1_536
    # Coates et al. 2013: 3 servers x 4 GTX 680 = 12 GPUs = 18,432 CUDA cores.
    assert 12 * gtx680.total_cores == 18_432
    assert gtx680.price_usd == pytest.approx(499.0)


def test_golden_links() -> None:
    ls = links()
    assert ls["pcie5-x16"].bandwidth_bytes_per_s == pytest.approx(63e9)
    assert ls["pcie3-x16"].bandwidth_bytes_per_s == pytest.approx(15.75e9)
    assert ls["nvlink4"].bandwidth_bytes_per_s == pytest.approx(450e9)
    assert ls["ib-fdr"].bandwidth_bytes_per_s == pytest.approx(54.5e9 / 8)


def test_golden_cpus() -> None:
    devs = devices()
    e5v3 = devs["xeon-e5-2630v3"]
    assert isinstance(e5v3, CPUSpec)
    assert e5v3.sockets == 2 and e5v3.total_cores == 16
    # Peak SP at base clock: 16 cores x 2.4 GHz x 32 FLOP/cycle = 1228.8 GFLOPS.
    peak = e5v3.total_cores * e5v3.clock_hz * e5v3.flops_per_cycle_per_core["fp32"]
    assert peak == pytest.approx(1228.8e9)
    e5 = devs["xeon-e5-2670"]
    assert isinstance(e5, CPUSpec)
    assert e5.price_usd == pytest.approx(1552.0)
    # published.md: 333 SP GFLOPS at base clock.
    assert e5.total_cores * e5.clock_hz * e5.flops_per_cycle_per_core["fp32"] == pytest.approx(
        332.8e9
    )


def test_two_socket_cpu_counts_power_and_price_per_socket_once():
    """Regression: the dual E5-2630 v3 listed totals and the CPU model doubled them again."""
    from hardware_models.catalog_io import make_device

    host = make_device("xeon-e5-2630v3")
    assert host.tdp_w == 2 * 85.0 and host.price_usd == 2 * 667.0
    assert host.cores == 16
