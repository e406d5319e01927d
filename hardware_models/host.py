"""The host and the framework as their own model: what issuing one step costs the host thread.

A GPU runs kernels; the host thread (Python, the framework's dispatcher, autograd, the
optimizer loop) issues them, and for small networks or small batches it is the slower of the
two. Its costs belong to the framework and the host CPU, not to the GPU, so one fitted
`HostProfile` per framework (catalog `hosts/FRAMEWORK.yaml`, fitted by
`simulator.calibrate.host` from measured step times) is carried to every GPU whose own
profile has no host measurement:
- `launch_s` per kernel issued in the forward pass and `backward_launch_s` per kernel of the
  backward pass (autograd's node evaluation included), per kernel and not per op,
- `cast_launch_s` per dtype cast autocast issues (weights, activations, their gradients):
  the dispatcher's own call, no Python module around it,
- `optimizer_tensor_s` per parameter tensor of an optimizer step (the foreach lists, the
  AccumulateGrad nodes, zero_grad), and
- `step_s` per step by mode (the Python of one iteration: the call of the model, the loss,
  `backward()`, `step()`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat

from hardware_models.profile import Profile
from simulator.core.yaml_source import parse_yaml_text

HOSTS_FOLDER = Path(__file__).parent / "catalog" / "hosts"


class HostProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    framework: str
    host: str = Field(description="the machine whose host thread was measured")
    origin: str = Field(description="how the numbers were obtained")
    launch_s: NonNegativeFloat = Field(description="host time per forward kernel issued")
    backward_launch_s: NonNegativeFloat = Field(
        description="host time per backward kernel issued, autograd's node evaluation included")
    cast_launch_s: NonNegativeFloat | None = Field(
        None, description="host time per dtype cast kernel autocast issues (absent: launch_s)")
    transpose_launch_s: NonNegativeFloat | None = Field(
        None, description="host time per NCHW <-> NHWC transpose cuDNN launches around a "
        "tensor-core convolution (absent: the spec's kernel_launch_s)")
    optimizer_tensor_s: NonNegativeFloat = Field(
        0.0, description="host time per parameter tensor per optimizer step")
    step_s: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="host time per step by mode (train, infer)")
    fitted_from: list[str] = []
    fit_error: dict[str, float] = {}


@cache
def catalog_host(framework: str) -> HostProfile | None:
    """The framework's fitted host profile from the catalog, if there is one."""
    path = HOSTS_FOLDER / f"{framework}.yaml"
    if not path.is_file():
        return None
    where = f"hardware_models/catalog/hosts/{framework}.yaml"
    return HostProfile.model_validate(parse_yaml_text(path.read_text(), where).data)


def with_host(profile: Profile, host: HostProfile | None) -> Profile:
    """`profile` with the host's terms: all of them where the profile has no host measurement
    of its own (a transferred or spec-sheet profile), else the per-step, per-tensor and
    per-transpose terms that a per-kernel measurement does not give, scaled by how much faster
    that profile's host issues a kernel (`host_speed_scale`)."""
    if host is None:
        return profile
    scale = host_speed_scale(profile, host)
    update: dict[str, object] = {
        "optimizer_tensor_s": host.optimizer_tensor_s * scale,
        "step_s": {mode: s * scale for mode, s in host.step_s.items()},
        "host_origin": host.origin}
    if profile.launch_s is None:
        by_kernel = {} if host.cast_launch_s is None else {"cast": host.cast_launch_s}
        update.update(launch_s=host.launch_s, backward_launch_s=host.backward_launch_s,
                      launch_s_by_kernel=by_kernel, autograd_node_s=0.0,
                      transpose_launch_s=host.transpose_launch_s)
    elif host.transpose_launch_s is not None and profile.transpose_launch_s is None:
        update["transpose_launch_s"] = host.transpose_launch_s * scale
    return profile.model_copy(update=update)


def host_speed_scale(profile: Profile, host: HostProfile) -> float:
    """How long `profile`'s own host takes to issue a kernel, relative to `host`'s: 1 where
    the profile measured none (it takes the host's terms as they are). A faster host CPU (the
    H100 machine's: 10.7 us per kernel, against 29 us on the H200's VM) does the host's other
    work faster in proportion."""
    if profile.launch_s is None or not host.launch_s:
        return 1.0
    return profile.launch_s / host.launch_s


@cache
def catalog_intervals(framework: str) -> dict[str, dict[str, float]] | None:
    """The framework's prediction-interval quantiles per regime (`hosts/FRAMEWORK.intervals.yaml`,
    written by `calibrate-host --intervals` from held-out residuals), if the catalog has them."""
    path = HOSTS_FOLDER / f"{framework}.intervals.yaml"
    if not path.is_file():
        return None
    where = f"hardware_models/catalog/hosts/{framework}.intervals.yaml"
    return dict(parse_yaml_text(path.read_text(), where).data["regimes"])
