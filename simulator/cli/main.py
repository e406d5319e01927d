"""Command line: `python -m simulator COMMAND ...` (predict, list, run, sweep, plot,
measure, calibrate, calibrate-host, calibrate-conv, calibrate-alignment, calibrate-link,
validate).

Only argument parsing lives here; each command imports its implementation lazily so that
`measure` runs on a machine that has numpy/CuPy but not the simulation stack.
Bad input of any kind ends with one line on stderr and exit status 2, never a traceback.
argparse (stdlib) rather than typer: it gives that one-line contract without depending on
typer's private, version-dependent click internals.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, NoReturn

from simulator.core.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see --help)")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict one training or inference step")
    p.add_argument("--model", help="catalog model name, model YAML file, FILE.onnx, "
                   "torchvision:NAME or FILE.py:FACTORY, e.g. vgg16")
    p.add_argument("--hardware", required=True, help="catalog device name, e.g. h100-sxm")
    p.add_argument("--batch", type=int, default=1, help="samples each device processes per step")
    p.add_argument("--global-batch", type=int, default=None,
                   help="samples of the whole cluster per step (instead of --batch)")
    p.add_argument("--precision", default="fp32", help="fp32, tf32, bf16 or fp16")
    p.add_argument("--mode", default="train", help="train or infer")
    p.add_argument("--optimizer", default="sgd", help="sgd (with momentum), adam or adamw")
    p.add_argument("--seq-len", type=int, default=None,
                   help="tokens per sample of a sequence model (default: the model's)")
    p.add_argument("--unsupported-as-elementwise", action="store_true",
                   help="cost an imported model's unknown operators as elementwise kernels")
    p.add_argument("--devices", type=int, default=1, help="number of devices")
    p.add_argument("--devices-per-node", type=int, default=None)
    p.add_argument("--intra-link", default=None, help="link inside a node, e.g. nvlink4")
    p.add_argument("--inter-link", default=None, help="link between nodes, e.g. ib-ndr")
    p.add_argument("--parallel", default="data",
                   help="strategy: data, model, pipeline, parameter_server or a plugin's")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a strategy option, as in YAML's parallel.options (repeatable), e.g. "
                        "micro_batches=8 or collective=allreduce_tree")
    p.add_argument("--collective", default=None,
                   help="time one collective alone, e.g. allreduce, allreduce_tree")
    p.add_argument("--bytes", type=float, default=None, dest="bytes_", help="collective size")
    p.add_argument("--spec-sheet", action="store_true", help="ignore calibration profiles")
    p.add_argument("--sync-input", action="store_true",
                   help="copy the batch before the first layer (latency) instead of prefetching")
    p.add_argument("--input", default="pinned",
                   help="where the batch lives: device (synthetic data), pinned (default: a "
                        "DataLoader with pin_memory=True, copied during the previous step) or "
                        "pageable")
    p.add_argument("--conv-algorithm", default="implicit_gemm",
                   help="implicit_gemm (cuDNN-style) or im2col (explicit lowering)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU: threads each op runs on (default: every core)")
    p.add_argument("--straggler", action="append", metavar="DEVICE=SLOWDOWN", default=None,
                   help="device DEVICE (0 to devices - 1) runs its kernels SLOWDOWN times slower, "
                        "as YAML's hardware.stragglers (repeatable), e.g. 3=1.5")
    p.add_argument("--link-fault", action="append", metavar="A,B=FRACTION", default=None,
                   help="the cable between vertices A and B (d0, n0.fabric, n0.nic0, spine) "
                        "carries FRACTION of its bandwidth, or none with =failed, as YAML's "
                        "hardware.link_faults (repeatable), e.g. d0,n0.fabric=failed")
    p.add_argument("--framework", default="pytorch",
                   help="whose kernels run: pytorch (default), cupy or numpy (per-kernel rates)")
    p.add_argument("--json", action="store_true", dest="json_out", help="print one JSON object")
    p.add_argument("--per-layer", action="store_true", help="add per-layer times")


def _add_commands(sub: argparse._SubParsersAction) -> None:
    _add_predict(sub)
    p = sub.add_parser("list", help="list the catalog")
    p.add_argument("what", help="hardware, links or models")
    p = sub.add_parser("run", help="run an experiment YAML")
    p.add_argument("experiment")
    p.add_argument("--out", default=None, help="output folder (default: results/NAME-TIME)")
    p.add_argument("--quick", action="store_true", help="reduced setting (used by the tests)")
    p = sub.add_parser("sweep", help="run a sweep experiment (grid or zipped lists of scenarios)")
    p.add_argument("experiment")
    p.add_argument("--out", default=None, help="output folder (default: results/NAME-TIME); "
                   "running again into it skips the points already there")
    p.add_argument("--workers", type=int, default=None,
                   help="local processes, or LocalCluster workers (default: every CPU)")
    p.add_argument("--scheduler", default=None,
                   help="run on Dask: tcp://HOST:8786, or local-cluster (needs the [dask] extra)")
    p.add_argument("--retry-failed", action="store_true", help="run the failed points again")
    p.add_argument("--quick", action="store_true", help="no figures (used by the tests)")
    p = sub.add_parser("plot", help="redraw figures from a results folder (no simulation)")
    p.add_argument("results_dir", help="a folder `run` or `sweep` wrote")
    p.add_argument("--kind", default=None,
                   help="figures to draw, comma-separated: timeline, breakdown, roofline, "
                        "scaling, pareto, compare, layers, validation (default: all)")
    p.add_argument("--style", default=None, help="slides (16:9, large type) or paper "
                   "(8 pt, TrueType fonts in PDF; default: the run's outputs.style, slides)")
    p.add_argument("--width", default=None, help="a paper's width: two-column (7.16 in, "
                   "default) or one-column (3.5 in, into STEM-paper-one-column.*)")
    p.add_argument("--format", default="png,svg", dest="formats",
                   help="file formats, comma-separated: png, svg, pdf")
    p.add_argument("--scenario", action="append", default=None, metavar="NAME",
                   help="scenario for the timeline, layers and roofline figures (repeatable; "
                        "default: the run's outputs.timeline, else the first)")
    p.add_argument("--color-by", default="phase", dest="color_by",
                   help="the roofline's colours: phase (default) or layer (layer kind, into "
                        "roofline-by-layer.*)")
    p = sub.add_parser("measure", help="time real kernels with numpy or CuPy")
    p.add_argument("--backend", required=True, help="numpy or cupy")
    p.add_argument("--out", required=True, help="measurements JSON to write")
    p.add_argument("--quick", action="store_true", help="a small sweep (seconds, for tests)")
    p = sub.add_parser("calibrate", help="fit a device profile from measurements")
    p.add_argument("measurements", nargs="+")
    p.add_argument("--hardware", required=True, help="a catalog device, a device entry YAML, "
                   "or a YAML path that does not exist: a new entry is written there from "
                   "the measured device (README: Your own machine)")
    p.add_argument("--out", required=True, help="profile YAML to write")
    new = p.add_argument_group("a new device entry (--hardware NEW.yaml)")
    new.add_argument("--name", default=None, help="the entry's name (default: the file's stem)")
    new.add_argument("--clock-ghz", default=None, help="the clock, where /proc/cpuinfo or "
                     "the GPU's attributes do not tell it right")
    new.add_argument("--max-clock-ghz", default=None, help="a CPU's highest turbo clock")
    new.add_argument("--memory-bandwidth-gbs", default=None,
                     help="DRAM bandwidth in GB/s (a CPU: channels x MT/s x 8 bytes)")
    new.add_argument("--flops-per-cycle", action="append", default=None, metavar="DTYPE=N",
                     help="a CPU core's FLOPs per cycle in a dtype (repeatable), over what "
                     "its SIMD flags are read as")
    new.add_argument("--peak-tflops", action="append", default=None, metavar="DTYPE=TFLOPS",
                     help="a GPU's dense peak in a dtype (repeatable), e.g. bf16=312")
    new.add_argument("--host-link", default=None, help="a GPU's host link (a catalog link)")
    p = sub.add_parser("calibrate-host",
                       help="fit the framework's host profile from measured step times")
    p.add_argument("measurements", nargs="+", help="step-time files (benchmarks/torch_zoo.py)")
    p.add_argument("--host", required=True, help="the machine the steps ran on, in words")
    p.add_argument("--hardware", required=True, help="the catalog GPU the steps ran on")
    p.add_argument("--out", required=True, help="host profile YAML to write")
    p.add_argument("--intervals", default=None,
                   help="also write the prediction intervals (held-out residuals) to this YAML")
    p.add_argument("--layers", nargs="+", default=None, help="conv-layers files: refit the "
                   "device's convolution terms without each held-out network (as "
                   "benchmarks/accuracy.py)")
    p = sub.add_parser("calibrate-conv",
                       help="fit a GPU profile's convolution terms from layers timed alone")
    p.add_argument("measurements", nargs="+",
                   help="conv-layers files (benchmarks/torch_conv_layers.py)")
    p.add_argument("--hardware", required=True, help="the catalog GPU the layers ran on")
    p.add_argument("--base", required=True, help="the profile to start from: a catalog "
                   "profile name (h100-sxm) or a profile YAML")
    p.add_argument("--out", required=True, help="profile YAML to write")
    p = sub.add_parser("calibrate-alignment",
                       help="fit a GPU profile's GEMM rate at strides that are not 16-byte "
                       "multiples from products timed alone")
    p.add_argument("measurements", help="gemm-alignment file (benchmarks/torch_gemm_alignment.py)")
    p.add_argument("--base", required=True, help="the profile to start from: a catalog "
                   "profile name (h100-sxm) or a profile YAML")
    p.add_argument("--out", required=True, help="profile YAML to write")
    p = sub.add_parser("calibrate-link", help="fit a link's bandwidth and latency from collectives")
    p.add_argument("measurements")
    p.add_argument("--hardware", required=True, help="the GPUs the collectives ran on")
    p.add_argument("--link", required=True, help="catalog link name, e.g. nvlink4")
    p.add_argument("--out", required=True, help="link profile YAML to write")
    p = sub.add_parser("validate", help="compare predictions with measurements")
    p.add_argument("measurements", nargs="+")
    p.add_argument("--hardware", required=True, help="catalog device name or profile YAML")
    p.add_argument("--out", default=None, help="folder for the table and figure")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m simulator", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_commands(sub)
    return parser


HANDLERS = {  # command -> (module, function), imported only when the command runs
    "predict": ("simulator.cli.predict_cmd", "run_predict"),
    "list": ("simulator.cli.list_cmd", "run_list"),
    "run": ("simulator.cli.run_cmd", "run_experiment_cli"),
    "sweep": ("simulator.cli.sweep_cmd", "run_sweep_cli"),
    "plot": ("simulator.cli.plot_cmd", "run_plot"),
    "measure": ("simulator.measure.runner", "run_measure"),
    "calibrate": ("simulator.calibrate.device", "run_calibrate"),
    "calibrate-host": ("simulator.calibrate.host", "run_calibrate_host"),
    "calibrate-conv": ("simulator.calibrate.conv_layers", "run_calibrate_conv"),
    "calibrate-alignment": ("simulator.calibrate.gemm_alignment", "run_calibrate_alignment"),
    "calibrate-link": ("simulator.calibrate.link", "run_calibrate_link"),
    "validate": ("simulator.validate.compare", "run_validate"),
}


def _dispatch(args: argparse.Namespace) -> None:
    opts = {k: v for k, v in vars(args).items() if k != "command"}
    module, function = HANDLERS[args.command]
    handler: Callable[..., None] = getattr(importlib.import_module(module), function)
    handler(**opts)


def _warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
    print(f"warning: {message}", file=sys.stderr)  # one line, as errors are


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs one command, turning bad input into one line and exit status 2."""
    warnings.showwarning = _warning
    try:
        _dispatch(build_parser().parse_args(argv))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0
