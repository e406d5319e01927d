"""Every plugin registry of the project, in the lowest stage so that any stage can look names
up (the config layer checks a YAML's strategy without importing the strategies).

Each registry reads the entry-point group `simulator.<kind>`; the project's own built-ins are
declared there too (pyproject.toml), so a lookup from any stage sees all of them, loaded on
first access. The modules that define plugins re-export their registry under its old name
(`hardware_models.registry.hardware`, `workloads.layers.layer_kinds`,
`simulator.parallel.job.strategy`, `simulator.parallel.collectives.collective`, ...).
See docs/plugins.md for what each kind of plugin is.
"""

from __future__ import annotations

from typing import Any

from simulator.core.registry import Registry

hardware: Registry[Any] = Registry("hardware", builtins=True)  # device kinds: cpu, gpu, ideal
layer_kind: Registry[Any] = Registry("layer_kind", builtins=True)  # conv2d, linear, relu, ...
strategy: Registry[Any] = Registry("strategy", builtins=True)  # single, data, model, ...
collective: Registry[Any] = Registry("collective", builtins=True)  # allreduce, allgather, ...
optimizer: Registry[Any] = Registry("optimizer", builtins=True)  # sgd, adam
precision: Registry[Any] = Registry("precision", builtins=True)  # fp32, tf32, bf16, fp16, ...
framework: Registry[Any] = Registry("framework")
conv_algorithm: Registry[Any] = Registry("conv_algorithm")
importer: Registry[Any] = Registry("importer", builtins=True)  # onnx, torch: --model FILE.onnx, ...
measure_backend: Registry[Any] = Registry("measure_backend")

ALL: tuple[Registry[Any], ...] = (hardware, layer_kind, strategy, collective, optimizer,
                                  precision, framework, conv_algorithm, importer, measure_backend)
