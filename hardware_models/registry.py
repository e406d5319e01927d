"""The `hardware` registry: device kinds (cpu, gpu, ideal, and plugins) by name.

The instance lives in `simulator.core.plugins` (every stage may look kinds up); this module
re-exports it for the device modules' `@hardware.register("gpu")`.
"""

from __future__ import annotations

from typing import Any

from simulator.core.plugins import hardware as _hardware
from simulator.core.registry import Registry

hardware: Registry[Any] = _hardware
