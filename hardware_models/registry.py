"""The `hardware` registry: device kinds (cpu, gpu, ideal, and plugins) by name."""

from __future__ import annotations

from typing import Any

from simulator.core.registry import Registry

hardware: Registry[Any] = Registry("hardware")
