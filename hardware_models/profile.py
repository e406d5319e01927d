"""Calibration profiles: the achievable rates and fixed overheads of one device.

A spec sheet says what a device could do; a profile says what it does, fitted by
`simulator calibrate` from measured kernels. The spec-sheet profile (`spec_sheet_profile`)
assumes peak rates and only the catalog's launch overhead.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str
    origin: str = Field(description="'spec-sheet', 'calibrated' or 'transferred from NAME'")
    gemm_efficiency: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="achievable fraction of peak for full waves, per dtype"
    )
    gemm_tile: tuple[PositiveInt, PositiveInt] = (128, 128)
    gemm_k_half: NonNegativeFloat = Field(
        0.0, description="K at which a tile's main loop reaches half its rate (pipeline fill)"
    )
    memory_efficiency: PositiveFloat = 1.0
    vector_efficiency: PositiveFloat = Field(1.0, description="fraction of non-tensor peak")
    kernel_overhead_s: NonNegativeFloat = Field(0.0, description="device-side fixed time per kernel")
    launch_s: NonNegativeFloat | None = Field(None, description="host time per launch")
    copy_efficiency: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="fraction of host-link bandwidth: pinned, pageable"
    )
    copy_overhead_s: NonNegativeFloat = 0.0
    threads: PositiveInt | None = Field(None, description="CPU: threads the fit assumed")
    fitted_from: list[str] = []
    fit_error: dict[str, float] = {}

    def gemm_eff(self, dtype: str) -> float:
        return self.gemm_efficiency.get(dtype, self.gemm_efficiency.get("fp32", 1.0))


def spec_sheet_profile(device: str) -> Profile:
    return Profile(device=device, origin="spec-sheet")
