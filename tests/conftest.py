"""Shared fixtures: the ideal device, small graphs, a CLI runner in a subprocess, and
torchvision for the torch.fx importer's tests."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# property tests (tests/test_properties.py) take their number of examples from the profile:
# 1,000 each by default (CI), 10,000 with --hypothesis-profile=thorough
# (input generation may be slow on a shared machine: not a failure of the code under test)
SLOW_OK = [HealthCheck.too_slow]
settings.register_profile("ci", max_examples=1000, deadline=None, suppress_health_check=SLOW_OK)
settings.register_profile("thorough", max_examples=10000, deadline=None,
                          suppress_health_check=SLOW_OK)
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m simulator ARGS` in a fresh interpreter, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def torchvision():
    """torchvision as the torch.fx importer loads it; the test skips where it is missing."""
    torch = pytest.importorskip("torch")
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    from workloads.torch_import import load_torchvision

    return load_torchvision(torch, "tests")


@pytest.fixture(scope="module", params=["libyaml", "python"])
def yaml_loader(request):
    """The module's tests once with libyaml's C loader (where PyYAML has it) and once with
    PyYAML's Python composer; the environment variable reaches CLI subprocesses too."""
    from simulator.core.yaml_source import LOADER_ENV, libyaml_used

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOADER_ENV, request.param)
        if request.param == "libyaml" and not libyaml_used():
            pytest.skip("PyYAML has no libyaml (0.2.5 or later) here")
        yield request.param
