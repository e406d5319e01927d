"""Figures: every kind renders from a small saved result into valid PNG, SVG and PDF (no
Type 3 font), `plot` redraws the run's figures byte for byte and refuses bad input in one
line, titles stay inside the figure with the examples' longest names, and the regressions
of issue 13 (a clipped timeline title, a published marker labelled with the simulated value,
a time-to-train axis in seconds) stay fixed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from itertools import combinations
from pathlib import Path

import matplotlib.image
import pytest
from matplotlib.colors import to_rgb

from simulator.__main__ import main
from simulator.config.schema import load_experiment
from simulator.core.errors import UserError
from simulator.report.figure_data import load
from simulator.report.figure_style import PAPER, SLIDES, draw, inside_figure, styled, titles
from simulator.report.figures import KINDS, figure_makers, render
from simulator.report.plot_bars import layer_bounds
from simulator.report.plot_timeline import (
    BINS,
    LINKS_DETAILED,
    MAX_LANES,
    lanes,
    link_lanes,
    timeline_figure,
)
from simulator.report.plot_tradeoffs import pareto_front, scaling_series
from simulator.report.units import (
    format_bandwidth,
    format_bytes,
    format_rate,
    format_time,
    human_time_ticks,
)

ROOT = Path(__file__).resolve().parents[1]
def _examples() -> list:
    """The example experiments (sweep files, run by `sweep`, hold no scenario list)."""
    found = []
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        try:
            found.append(load_experiment(path))
        except UserError:
            assert "sweep" in path.read_text(), path
    return found


EXAMPLES = _examples()
LONGEST_NAME = max((s.name for e in EXAMPLES for s in e.scenarios), key=len)
LONGEST_TITLE = max((e.title for e in EXAMPLES), key=len)
EXPERIMENT = f"""title: "{LONGEST_TITLE}"
scenarios:
  - name: "{LONGEST_NAME}"
    workload: {{model: mlp, batch: 32, mode: train, dataset_size: 100000}}
    hardware: {{device: gtx-1080}}
    published: {{time_to_train_s: 60, source: made up}}
  - name: cpu
    workload: {{model: mlp, batch: 32, mode: train, dataset_size: 100000}}
    hardware: {{device: i7-10700}}
  - name: dp 4
    workload: {{model: mlp, batch: 32, mode: train, dataset_size: 100000}}
    hardware: {{device: h100-sxm, count: 4, intra_link: nvlink4}}
outputs: {{timeline: ["{LONGEST_NAME}", dp 4]}}
"""
ONE_COLUMN = PAPER.at("one-column")
TIME_LABEL = re.compile(r"^[0-9.]+ (µs|ms|s|min|h|day|days|week|year|years)$")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("figures")
    (base / "e.yaml").write_text(EXPERIMENT)
    out = base / "out"
    assert main(["run", str(base / "e.yaml"), "--out", str(out)]) == 0
    return out


def check_png(data: bytes) -> None:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    import io
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert image.shape[0] > 100 and image.shape[1] > 100


def check_svg(data: bytes) -> None:
    root = ET.fromstring(data)
    assert root.tag.endswith("svg") and float(root.get("width", "0pt").rstrip("pt")) > 0


def pdf_fonts(data: bytes) -> list[bytes]:
    """The /Subtype of every font dictionary of a PDF (objects and compressed streams)."""
    bodies = [data] + [zlib.decompress(m.group(1)) for m in re.finditer(
        rb"/FlateDecode.*?stream\r?\n(.*?)\r?\nendstream", data, re.S)
        if _inflates(m.group(1))]
    found = []
    for body in bodies:
        for obj in re.finditer(rb"<<(.*?)>>", body, re.S):
            if re.search(rb"/Type\s*/Font\b", obj.group(1)):
                found += re.findall(rb"/Subtype\s*/(\w+)", obj.group(1))
    return found


def _inflates(blob: bytes) -> bool:
    try:
        zlib.decompress(blob)
    except zlib.error:
        return False
    return True


def check_pdf(data: bytes) -> None:
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    fonts = pdf_fonts(data)
    assert fonts, "no font dictionary found"
    assert b"Type3" not in fonts, fonts


CHECKS = {"png": check_png, "svg": check_svg, "pdf": check_pdf}


STEMS = ("breakdown", "comparison", "roofline", "scaling", "pareto", "validation",
         "timeline-dp-4", "layers-dp-4")


@pytest.mark.parametrize("style, formats", [
    ("slides", "png,svg,pdf"), pytest.param("paper", "png,svg,pdf", marks=pytest.mark.slow)])
def test_every_kind_renders_in_every_format(folder, tmp_path, style, formats):
    work = tmp_path / "copy"
    shutil.copytree(folder, work)
    assert main(["plot", str(work), "--kind", ",".join(KINDS), "--style", style,
                 "--format", formats]) == 0
    suffix = "" if style == "slides" else "-paper"
    for stem in STEMS:
        for fmt in formats.split(","):
            CHECKS[fmt]((work / f"{stem}{suffix}.{fmt}").read_bytes())


def test_type3_check_can_fail():
    """The font check finds Type 3 fonts when matplotlib writes them (its default)."""
    import matplotlib
    from matplotlib.figure import Figure

    from simulator.report.figure_style import figure_bytes
    with matplotlib.rc_context({"pdf.fonttype": 3}):
        fig = Figure()
        fig.suptitle("Type 3 here")
        assert b"Type3" in pdf_fonts(figure_bytes(fig, "pdf"))


def test_plot_redraws_the_run_figures_byte_for_byte(folder, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(folder, work)
    before = {p.name: p.read_bytes() for p in work.glob("*.png")}
    for path in work.glob("*.png"):
        path.unlink()
    assert main(["plot", str(work), "--format", "png"]) == 0
    after = {p.name: p.read_bytes() for p in work.glob("*.png")}
    assert sorted(after) == sorted(before) and "roofline.png" in after
    for name, data in before.items():
        assert after[name] == data, name
    manifest = (work / ".simulator-manifest.json").read_text()
    assert "results.json" in manifest and "roofline.png" in manifest


def test_pdf_is_reproducible(folder, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(folder, work)
    drawn = []
    for _ in range(2):
        assert main(["plot", str(work), "--kind", "breakdown", "--style", "paper",
                     "--format", "pdf"]) == 0
        drawn.append((work / "breakdown-paper.pdf").read_bytes())
    check_pdf(drawn[0])
    assert drawn[0] == drawn[1]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", "plot", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_plot_bad_input_is_one_line_exit_2(folder, tmp_path, capsys):
    single = tmp_path / "single"
    shutil.copytree(folder, single)
    (single / "figure-data.json").write_text("{")
    cases = [([str(folder), "--kind", "pie"], "--kind: 'pie'"),
             ([str(folder), "--format", "jpg"], "--format: 'jpg'"),
             ([str(folder), "--style", "poster"], "--style: 'poster'"),
             ([str(tmp_path / "nowhere")], "not a folder"),
             ([str(ROOT / "docs")], "results.json: not found"),
             ([str(single)], "figure-data.json: unreadable JSON"),
             ([str(folder), "--scenario", "nope"], "--scenario: 'nope'")]
    for args, message in cases:
        assert main(["plot", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    proc = _cli(str(single))  # and as a user runs it: one line, no traceback
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_plot_kind_with_nothing_to_show(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text("title: One\nscenarios:\n  - name: a\n    workload: {model: mlp, batch: 8}\n"
                    "    hardware: {device: gtx-1080}\n")
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--quick"]) == 0
    proc = _cli(str(tmp_path / "r"), "--kind", "scaling")
    assert proc.returncode == 2 and "more than one device" in proc.stderr
    assert not list((tmp_path / "r").glob("scaling*"))
    assert main(["plot", str(tmp_path / "r"), "--kind", "roofline"]) == 0  # quick runs save it
    assert (tmp_path / "r" / "roofline.png").is_file()


def test_plot_never_overwrites_a_user_file(folder, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(folder, work)
    (work / "notes.txt").write_text("mine")
    (work / "breakdown-paper.png").write_text("my own figure")
    proc = _cli(str(work), "--style", "paper", "--kind", "breakdown", "--format", "png")
    assert proc.returncode == 2 and "was not written by this simulator" in proc.stderr
    assert (work / "breakdown-paper.png").read_text() == "my own figure"
    (work / "breakdown-paper.png").unlink()
    assert _cli(str(work), "--style", "paper", "--kind", "breakdown").returncode == 0
    assert (work / "notes.txt").read_text() == "mine"
    assert (work / "breakdown-paper.svg").is_file() and (work / "results.json").is_file()


def every_kind(folder, style) -> list:
    """The makers of every figure kind of the saved result, with the longest names."""
    saved = load(folder)
    makers = figure_makers(saved.rows, saved.scenarios, saved.title, [LONGEST_NAME, "dp 4"],
                           12, style)
    assert {kind for kind, _, _ in makers} == set(KINDS)
    return makers


@pytest.mark.parametrize("style", [SLIDES, pytest.param(PAPER, marks=pytest.mark.slow)],
                         ids=["slides", "paper"])
def test_titles_never_clip(folder, style):
    makers = every_kind(folder, style)
    with styled(style):
        for kind, stem, make in makers:
            fig = make()
            assert fig is not None, kind
            from simulator.report.figure_style import fit_titles
            fit_titles(fig)
            renderer = draw(fig)
            for text in titles(fig):
                assert inside_figure(fig, text, renderer), (stem, text.get_text())


def test_timeline_title_holds_the_whole_step_time(folder):
    """Regression: '...: one step, 164' lost its unit off the figure's edge."""
    saved = load(folder)
    entry = saved.scenario(LONGEST_NAME)
    with styled(SLIDES):
        fig = timeline_figure(LONGEST_NAME, entry)
        renderer = draw(fig)
    title = fig.texts[0]
    assert f"one step, {format_time(entry['end_s'])}" in " ".join(title.get_text().split())
    assert inside_figure(fig, title, renderer)


def _comparison_axes(folder):
    saved = load(folder)
    makers = figure_makers(saved.rows, saved.scenarios, saved.title, None, 12,
                           kinds=("compare",))
    with styled(SLIDES):
        fig = makers[0][2]()
    return saved, {ax.get_title(): ax for ax in fig.axes}


def test_published_marker_is_labelled_with_the_published_value(folder):
    """Regression: the label beside the published diamond showed the simulated value."""
    saved, axes = _comparison_axes(folder)
    row = saved.rows[0]
    texts = [t.get_text() for t in axes["time to train ↓"].texts]
    label = next(t for t in texts if t)
    assert label == f"{format_time(row['time_to_train_s'])}\n(published {format_time(60)})"


def test_time_to_train_axis_reads_in_human_units(folder):
    """Regression: the axis was in seconds while the bar labels were in h and min."""
    _, axes = _comparison_axes(folder)
    ax = axes["time to train ↓"]
    xlabel = " ".join(ax.get_xlabel().split())  # wrapped where it is wider than its panel
    assert "seconds" not in xlabel
    if ax.get_xscale() == "log":
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert labels and all(TIME_LABEL.match(label) for label in labels), labels
    else:
        assert re.fullmatch(r"time to train \((ms|s|min|h|days)\)", xlabel)
    assert xlabel.startswith("time to train (")  # the quantity, then its unit


def test_interval_error_bars_span_p10_to_p90(folder):
    saved, axes = _comparison_axes(folder)
    row = saved.rows[0]
    assert row["step_time_p10_s"] < row["step_time_s"] < row["step_time_p90_s"]
    lines = [ln for ln in axes["step time ↓"].lines if len(ln.get_xdata()) == 2
             and ln.get_linestyle() == "-"]
    spans = sorted(tuple(ln.get_xdata()) for ln in lines)
    scale = row["step_time_s"] / axes["step time ↓"].patches[0].get_width()
    assert any(abs(a * scale - row["step_time_p10_s"]) < 1e-9 and
               abs(b * scale - row["step_time_p90_s"]) < 1e-9 for a, b in spans), spans


def synthetic(devices: int, ops: int = 20, apart_s: float = 1e-6) -> dict:
    """`devices` devices running `ops` ops of 0.8 ms, device d `d * apart_s` later."""
    spans, launches = [], []
    for d in range(devices):
        for i in range(ops):
            spans.append([d, 0, i * 1e-3 + d * apart_s, 0.8e-3, i % 2, i])
            launches.append([d, i * 1e-3, i * 1e-3 + 1e-4, i])
    return {"devices": devices, "replicas": 1, "end_s": ops * 1e-3 + devices * apart_s,
            "spans": spans, "launches": launches, "layers": [f"l{i}" for i in range(ops)],
            "streams": ["compute"], "categories": ["compute", "memory"], "critical_device": 0,
            "ops": [], "device": {"name": "x", "kind": "gpu", "peak_flops_per_s": {"fp32": 1.0},
                                  "memory_bandwidth_bytes_per_s": 1.0, "fork_join_s": None}}


def test_timeline_folds_alike_devices_and_pools_those_that_differ():
    eight = lanes(synthetic(8))  # devices 1e-6 s apart in a 20 ms step: alike
    assert [lane.label for lane in eight.rows] == ["dev 0-7: host launch thread",
                                                   "dev 0-7: compute"]
    assert eight.folded == ["dev 0-7: 8 devices alike (bars within 0.05% of the step), "
                            "drawn as dev 0"]
    assert lanes(synthetic(8)).rows[1].bars == lanes(synthetic(1)).rows[1].bars  # dev 0's
    data = _unlike(synthetic(1000))
    many = lanes(data)
    assert len(many) <= MAX_LANES
    assert [lane.label for lane in many.rows[:2]] == ["dev 0: host launch thread",
                                                      "dev 0: compute"]
    pooled = [lane for lane in many.rows if lane.busy is not None]
    first = int(pooled[0].label.split()[1].split("-")[0])
    assert [lane.label for lane in pooled] == [
        f"dev {first}-999 ({1000 - first}): host launch thread",
        f"dev {first}-999 ({1000 - first}): compute"]
    assert all(lane.busy is None for lane in many.rows[:-2])
    width = data["end_s"] / BINS
    busy_s = sum(v.sum() for v in pooled[1].busy.values()) * width * (1000 - first)
    expected = sum(span[3] for span in data["spans"] if span[0] >= first)
    assert busy_s == pytest.approx(expected, rel=1e-9)  # busy time is conserved
    assert all((v <= 1.0).all() for v in pooled[1].busy.values())
    assert many.folded[-1] == (f"dev {first}-999: {1000 - first} devices that differ, a lane "
                               "per resource, the fraction of them busy")


def test_critical_device_is_drawn_in_detail():
    data = _unlike(synthetic(8))
    data["critical_device"] = 5
    rows = lanes(data).rows
    assert rows[0].label == "dev 5: host launch thread" and rows[0].busy is None
    assert [lane.label for lane in rows if lane.busy is not None][0].startswith("dev ")


def _unlike(data: dict) -> dict:
    """Make every device's step its own (a pipeline's stages): device d idles d ms first."""
    for row in data["spans"]:
        row[2] += 1e-3 * row[0]
    for row in data["launches"]:
        row[1] += 1e-3 * row[0]
        row[2] += 1e-3 * row[0]
    data["end_s"] += 1e-3 * data["devices"]
    return data


TIMELINES = {"8 alike": lambda: synthetic_links(synthetic(8, ops=40), 8),
             "8 unlike": lambda: _unlike(synthetic_links(synthetic(8, ops=40), 8)),
             "1,000 alike": lambda: synthetic_links(synthetic(1000, apart_s=0.0), 1000),
             "1,000 unlike": lambda: _unlike(synthetic_links(synthetic(1000), 1000))}


@pytest.mark.parametrize("style", [SLIDES, PAPER, ONE_COLUMN],
                         ids=["slides", "paper", "one-column"])
@pytest.mark.parametrize("case", list(TIMELINES))
def test_timeline_reads_on_a_slide_and_in_a_paper(case, style):
    """At 8 and at 1,000 devices: at most MAX_LANES lanes, a slide stays 16:9 and a paper
    figure a third of a page (one column wide: 4 in tall at most), the lane labels do not
    touch one another and lie inside the figure, lanes are at least 1.4 lines of their
    label's type apart, device 0 is drawn bar by bar, and the line under the title says
    what was folded. (The timeline of 8 devices
    had 34 lanes, 32 inches tall on a slide; of 1,000, 12 inches.)"""
    data = TIMELINES[case]()
    with styled(style):
        fig = timeline_figure(f"{case} devices", data, style)
        renderer = draw(fig)
    width, height = fig.get_size_inches()
    if style is SLIDES:
        assert (width, height) == pytest.approx((13.33, 7.5))
    else:  # a third of a page; one column wide, as tall as wide at most (and a bit)
        assert width == pytest.approx(style.width()) and height <= (
            4.0 if style.narrow else 3.5)
    ax = fig.axes[0]
    ticks = [t for t in ax.get_yticklabels() if t.get_text()]
    assert 2 <= len(ticks) <= MAX_LANES
    boxes = [t.get_window_extent(renderer) for t in ticks]
    for a, b in combinations(boxes, 2):
        assert not a.overlaps(b)
    assert all(inside_figure(fig, t, renderer) for t in [*ticks, *titles(fig)])
    pitch_pt = abs(ax.transData.transform((0, 1))[1] - ax.transData.transform((0, 0))[1]) \
        * 72 / fig.dpi
    assert pitch_pt >= 1.4 * ticks[0].get_fontsize()
    first = lanes(data).rows[1]
    assert first.label.startswith("dev 0") and first.busy is None
    note = " ".join(ax.get_title().split())
    assert ("devices alike" in note) == ("unlike" not in case)
    assert ("devices that differ" in note) == ("unlike" in case)
    assert "link channels, a lane per kind" in note


def test_layer_bound_is_launch_when_the_host_is_slower():
    data = synthetic(1, ops=2)
    assert layer_bounds(data) == {"l0": "compute", "l1": "memory"}
    data["launches"] = [[0, 0.0, 0.0009, 0], [0, 0.0, 0.0001, 1]]
    assert layer_bounds(data) == {"l0": "launch", "l1": "memory"}


def test_scaling_series_and_pareto_front(folder):
    saved = load(folder)
    series = scaling_series(saved.rows)
    dp = next(r for r in saved.rows if r["name"] == "dp 4")
    assert list(series.values()) == [[(4, dp["scaling_efficiency"])]]
    points = [(1.0, 5.0, "a"), (2.0, 3.0, "b"), (3.0, 4.0, "c"), (4.0, 1.0, "d")]
    assert [p[2] for p in pareto_front(points)] == ["a", "b", "d"]


def _lightness(colour: str) -> float:
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(colour)]
    y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return 116 * y ** (1 / 3) - 16 if y > 0.008856 else 903.3 * y


@pytest.mark.parametrize("palette", ["categories", "phases"])
def test_paper_palette_reads_in_greyscale(palette):
    colours = sorted(set(getattr(PAPER, palette).values()))  # task shares forward's colour
    gaps = [abs(_lightness(a) - _lightness(b)) for a, b in combinations(colours, 2)]
    assert min(gaps) >= 7.0


@pytest.mark.parametrize("style", [SLIDES, PAPER], ids=["slides", "paper"])
def test_every_figure_is_a_slide_or_fits_the_page(folder, style):
    """Every kind drawn from the saved result: on a slide 16:9, the whole slide (the
    comparison was 14.8 in wide, the breakdown 4.5 in tall, the layers 8 in); in a paper
    no wider than the two columns (the comparison was 7.95 in)."""
    makers = every_kind(folder, style)
    with styled(style):
        for _, stem, make in makers:
            width, height = make().get_size_inches()
            if style is SLIDES:
                assert (width, height) == pytest.approx((13.33, 7.5)), stem
            else:
                assert width <= PAPER.width(2) + 1e-9, stem


def test_paper_sizes_are_column_widths_and_slides_are_16_9():
    assert PAPER.width(1) == 3.5 and PAPER.width(2) == 7.16
    assert SLIDES.width(2) / SLIDES.height_in == pytest.approx(16 / 9, rel=0.01)


def test_units():
    assert format_rate(3.12e14) == "312 TFLOP/s"
    assert format_bandwidth(3.35e12) == "3.35 TB/s"
    assert format_bytes(25.2e6) == "25.2 MB"
    # evenly spread in decades (was 1 h, 1 day, 30 days: thinned by count, 10 h beside 1 day
    # elsewhere)
    assert [label for _, label in human_time_ticks(3000, 4e6)] == ["1 h", "10 h", "1 week",
                                                                    "30 days"]


def test_render_leaves_out_kinds_with_nothing_to_show(folder):
    saved = load(folder)
    rows = [r for r in saved.rows if r["name"] == "cpu"]
    makers = figure_makers(rows, saved.scenarios, "t", None, 5, kinds=("scaling", "breakdown"))
    assert list(render(makers, ["png"])) == ["breakdown"]


def test_timeline_has_a_row_per_link_channel_from_a_saved_result(folder):
    """The saved 4-GPU run: one lane per channel of its NVLink switch, filled exactly while
    the saved transfers cross it, and drawn in the communication colour."""
    entry = load(folder).scenario("dp 4")
    assert entry is not None and entry["channels"]
    channels = entry["channels"]
    assert len(channels) == 8 > LINKS_DETAILED  # each GPU into the switch and back: alike
    link_rows = [lane for lane in lanes(entry).rows if lane.label.startswith("link")]
    assert [lane.label for lane in link_rows] == ["links d*>n*.fabric (4 alike)",
                                                  "links n*.fabric>d* (4 alike)"]
    for lane, first in zip(link_rows, ("d0>n0.fabric", "n0.fabric>d0"), strict=True):
        saved = [(a, d) for c, a, d in entry["links"] if channels[c] == first]
        assert saved and [(a, d) for a, d, _, _ in lane.bars] == saved
        assert {bar[2] for bar in lane.bars} == {"communication"}
    few = dict(entry, channels=channels[:LINKS_DETAILED],
               links=[row for row in entry["links"] if row[0] < LINKS_DETAILED])
    assert [lane.label for lane in link_lanes(few)] == [f"link {c}" for c in few["channels"]]
    with styled(SLIDES):
        fig = timeline_figure("dp 4", entry)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-len(link_rows):] == [lane.label for lane in link_rows]


def test_link_intervals_are_merged_per_channel():
    from simulator.engine.trace import LinkSpan, Trace
    from simulator.report.figure_data import _Index, link_busy

    trace = Trace(["d0"], links=[LinkSpan("d10>s", "a", 0.0, 2.0, 1.0, 1.0),
                                 LinkSpan("d10>s", "b", 1.0, 3.0, 1.0, 1.0),
                                 LinkSpan("d2>s", "c", 5.0, 6.0, 1.0, 1.0),
                                 LinkSpan("d10>s", "d", 4.0, 4.5, 1.0, 1.0)])
    channels = _Index()
    assert link_busy(trace, channels) == [[0, 5.0, 1.0], [1, 0.0, 3.0], [1, 4.0, 0.5]]
    assert list(channels) == ["d2>s", "d10>s"]  # natural order


def synthetic_links(data: dict, devices: int, apart_s: float = 0.0) -> dict:
    """Give `synthetic` data the channels of `devices` GPUs in nodes of 8 behind one spine,
    each busy for the second half of every millisecond (channel c `c * apart_s` later)."""
    names = [f"d{d}>n{d // 8}.fabric" for d in range(devices)] + [
        f"n{n}.nic0>spine" for n in range(devices // 8)]
    data["channels"] = names
    data["links"] = [[c, i * 1e-3 + 0.5e-3 + (c % 8) * apart_s, 0.5e-3]
                     for c in range(len(names))
                     for i in range(len(data["launches"]) // data["devices"])]
    return data


def test_link_lanes_are_aggregated_by_kind_at_a_thousand_devices():
    data = synthetic_links(synthetic(1000), 1000, apart_s=5e-5)
    link_rows = [lane for lane in lanes(data).rows if lane.label.startswith("link")]
    assert [lane.label for lane in link_rows] == [
        "links d*>n*.fabric (1,000, share busy)", "links n*.nic*>spine (125, share busy)"]
    width = data["end_s"] / BINS
    busy_s = sum(v.sum() for v in link_rows[0].busy.values()) * width * 1000
    assert busy_s == pytest.approx(1000 * 20 * 0.5e-3, rel=1e-9)  # busy time is conserved
    with styled(SLIDES):
        fig = timeline_figure("thousand", data)
    assert fig.get_size_inches()[1] < 13
    eight = lanes(synthetic_links(synthetic(8), 8))  # 9 channels: past the limit of 4
    assert [lane.label for lane in eight.rows if lane.label.startswith("link")] == [
        "links d*>n*.fabric (8 alike)", "link n0.nic0>spine"]  # a kind of one: itself
    assert eight.folded[-1] == "9 link channels, a lane per kind: alike, drawn as one"
    assert lanes(synthetic_links(synthetic(8), 8, 5e-5)).folded[-1] == (
        "9 link channels, a lane per kind: the fraction of them busy")


def test_many_kinds_of_links_share_a_last_lane():
    from simulator.report.plot_timeline import LINK_KINDS

    data = synthetic(1, ops=2)
    data["channels"] = [f"{kind}{i}>x" for kind in "abcdefghij" for i in range(2)]
    data["links"] = [[c, 1e-4 * (c % 2), 1e-3] for c in range(len(data["channels"]))]
    rows = link_lanes(data)
    assert len(rows) == LINK_KINDS and rows[-1].label == "links other links (10, share busy)"


def test_timeline_of_an_older_file_without_links_still_draws():
    data = synthetic(2)
    assert not [lane for lane in lanes(data).rows if lane.label.startswith("link")]


def dense_roofline(ops: int = 300) -> dict:
    """A GPU panel crowded with ops, the five longest almost on one point."""
    data = synthetic(1, ops=2)
    data["device"] = {"name": "gpu", "kind": "gpu", "fork_join_s": None,
                      "peak_flops_per_s": {"fp32": 6.7e13, "tf32": 4.9e14, "bf16": 9.9e14},
                      "memory_bandwidth_bytes_per_s": 3.35e12}
    kinds = ["conv2d", "linear", "batchnorm2d", "relu", "add", "maxpool2d", "attention",
             "layernorm", "gelu", "softmax"]
    data["layers"] = [f"layer{i}" for i in range(ops)]
    data["layer_kinds"] = [kinds[i % len(kinds)] for i in range(ops)]
    rows = []
    for i in range(ops):
        time_s = 1e-3 * (1 + (ops - i) / ops) if i < 5 else 1e-5 * (1 + i % 7)
        intensity = 30.0 * (1 + 0.01 * i) if i < 5 else 10 ** (-1 + 3 * (i % 37) / 37)
        flops = 1e11 * (1 + 0.001 * i) if i < 5 else 1e8 * (1 + i % 11)
        rows.append([f"d0.layer{i}.fwd", i, "gemm", ["fwd", "bwd_data", "bwd_weight"][i % 3],
                     "bf16", flops, flops / intensity, time_s, 5e-6])
    data["ops"] = rows
    data["end_s"] = sum(r[7] for r in rows)
    return data


def _text_boxes(fig, renderer):
    from matplotlib.text import Text
    return [(ax, t.get_text(), Text.get_window_extent(t, renderer))
            for ax in fig.axes for t in ax.texts if t.get_text()]


def crowded_roofline(points: int = 2500) -> dict:
    """`dense_roofline`'s five longest ops on one spot amid a grid of `points` small ops that
    covers most of the panel."""
    data = dense_roofline(5)
    for i in range(points):
        intensity, rate = 10 ** (-1 + 4 * (i % 50) / 50), 10 ** (12 + 2.9 * (i // 50) / 50)
        data["ops"].append([f"d0.small{i}.fwd", 0, "gemm", "fwd", "bf16", 1e8, 1e8 / intensity,
                            1e8 / rate, 5e-6])
    data["end_s"] = sum(r[7] for r in data["ops"])
    return data


def _placed(fig, renderer) -> list:
    """(axes, text, box, leader) of every text drawn in an axes, the leader the drawn line
    of an annotation's arrow (display points) or None."""
    from matplotlib.text import Text
    out = []
    for ax in fig.axes:
        for t in ax.texts:
            if not t.get_text():
                continue
            patch = getattr(t, "arrow_patch", None)
            line = None if patch is None else patch.get_transform().transform(
                patch.get_path().vertices)
            out.append((ax, t.get_text(), Text.get_window_extent(t, renderer), line))
    return out


def _inside(box, x, y, margin=0.5) -> bool:
    return box.x0 + margin < x < box.x1 - margin and box.y0 + margin < y < box.y1 - margin


def check_roofline_labels(fig, renderer, panels: list) -> None:
    """No two texts of a panel overlap, every text lies inside its axes, no op's leader
    line runs through another text, and the `LABELLED` longest ops of each panel's data are
    named, by their own label or by number in the panel's key."""
    from simulator.report.label_layout import overlaps
    from simulator.report.plot_roofline import LABELLED
    placed = _placed(fig, renderer)
    for (ax_a, a, box_a, _), (ax_b, b, box_b, _) in combinations(placed, 2):
        assert not (ax_a is ax_b and overlaps(box_a, box_b)), (a, b)
    for ax, text, box, _ in placed:
        frame = ax.get_window_extent(renderer)
        assert frame.x0 - 0.5 <= box.x0 and box.x1 <= frame.x1 + 0.5, text
        assert frame.y0 - 0.5 <= box.y0 and box.y1 <= frame.y1 + 0.5, text
    for ax, text, _, line in placed:
        if line is None:
            continue
        for (x0, y0), (x1, y1) in zip(line[:-1], line[1:], strict=True):
            for k in range(41):  # points along the drawn line
                x, y = x0 + (x1 - x0) * k / 40, y0 + (y1 - y0) * k / 40
                hit = [o for a, o, box, _ in placed if a is ax and o != text
                       and _inside(box, x, y)]
                assert not hit, (text, hit)
    for ax, data in zip(fig.axes, panels, strict=False):
        top = sorted(data["ops"], key=lambda op: (-op[7], op[0]))[:LABELLED]
        texts = [t for a, t, _, _ in placed if a is ax]
        key = ax.get_xlabel().splitlines()[1:] + [  # under the axes, or in them
            line for t in texts if re.match(r"#[0-9]+ ", t) for line in t.splitlines()]
        for op in top:
            name = op[0].removeprefix("d0.") + " ("
            tagged = [line.split()[0] for line in key if line.split()[1] + " (" == name]
            tags = [number for t in texts for number in t.split(",")
                    if re.fullmatch(r"(#[0-9]+,)*#[0-9]+", t)]
            assert any(t.startswith(name) for t in texts) or (
                len(tagged) == 1 and tagged[0] in tags), (name, texts, key)


@pytest.mark.parametrize("style", [SLIDES, PAPER, ONE_COLUMN],
                         ids=["slides", "paper", "one-column"])
@pytest.mark.parametrize("color_by", ["phase", "layer"])
def test_roofline_labels_never_overlap_on_a_dense_example(style, color_by):
    from simulator.report.plot_roofline import roofline_figure

    panels = [dense_roofline(), dense_roofline(120)]
    with styled(style):
        fig = roofline_figure([("dense", panels[0]), ("dense too", panels[1])],
                              "A crowded roofline", style, color_by)
        renderer = draw(fig)
    check_roofline_labels(fig, renderer, panels)


@pytest.mark.parametrize("style", [SLIDES, PAPER, ONE_COLUMN],
                         ids=["slides", "paper", "one-column"])
def test_roofline_names_the_longest_ops_amid_a_crowd(style):
    """2,500 ops over most of the panel, the five longest on one spot: each is named (it
    lost its name before where no place near its point was free), none over another."""
    from simulator.report.plot_roofline import roofline_figure

    data = crowded_roofline()
    with styled(style):
        fig = roofline_figure([("crowded", data)], "t", style)
        renderer = draw(fig)
    check_roofline_labels(fig, renderer, [data])
    assert any(t.startswith("memory ") for _, t, _, _ in _placed(fig, renderer))


def test_roofline_numbers_the_ops_it_has_no_room_to_name(monkeypatch):
    """With the places near a point and over the panel cut to a few, the longest ops that
    find none get a number by their point and their names, numbered, in a key in the
    panel, or under the axes where the key has no room either."""
    from simulator.report import label_layout, plot_roofline

    monkeypatch.setattr(plot_roofline, "OP_PLACES", label_layout.around((9.0,)))
    monkeypatch.setattr(label_layout, "SPREAD", (3, 3))
    data = crowded_roofline()
    with styled(SLIDES):
        fig = plot_roofline.roofline_figure([("crowded", data)], "t", SLIDES)
        renderer = draw(fig)
    check_roofline_labels(fig, renderer, [data])
    texts = [t for _, t, _, _ in _placed(fig, renderer)]
    xlabel = fig.axes[0].xaxis.label
    key = xlabel.get_text().splitlines()[1:] + [
        line for t in texts if re.match(r"#[0-9]+ ", t) for line in t.splitlines()]
    numbers = [line.split()[0] for line in key]
    assert numbers and numbers == [f"#{n}" for n in range(1, len(numbers) + 1)]
    tags = [number for t in texts if re.fullmatch(r"(#[0-9]+,)*#[0-9]+", t)
            for number in t.split(",")]
    assert sorted(tags) == sorted(numbers) and inside_figure(fig, xlabel, renderer)


def test_overlap_check_can_fail():
    from matplotlib.figure import Figure

    from simulator.report.label_layout import overlaps
    fig = Figure()
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another")
    (_, _, a), (_, _, b) = _text_boxes(fig, draw(fig))
    assert overlaps(a, b) and not overlaps(a, a.translated(a.width + 1, 0))


def test_roofline_by_layer_kind():
    from simulator.report.plot_roofline import roofline_figure

    with styled(SLIDES):
        fig = roofline_figure([("dense", dense_roofline())], "t", SLIDES, "layer")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    data = dense_roofline()
    time_s: dict = {}
    for op in data["ops"]:
        kind = data["layer_kinds"][op[1]]
        time_s[kind] = time_s.get(kind, 0.0) + op[7]
    assert legend[0] == max(time_s, key=time_s.get)  # the kinds by time, the rest "other"
    assert "other kinds" in legend and "forward" not in legend
    assert len(legend) == len(SLIDES.palette) + 1  # 7 kinds, other kinds, the launch floor


def test_plot_color_by(folder, tmp_path, capsys):
    work = tmp_path / "copy"
    shutil.copytree(folder, work)
    assert main(["plot", str(work), "--kind", "roofline", "--color-by", "layer",
                 "--format", "png"]) == 0
    check_png((work / "roofline-by-layer.png").read_bytes())
    assert load(work).scenario("dp 4")["layer_kinds"][:3] == ["", "linear", "relu"]
    assert main(["plot", str(work), "--color-by", "dtype"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--color-by: 'dtype' is not one of phase, layer" in err


def _axis_texts(fig) -> list:
    """(axes, kind, text) of every text drawn in an axes: its labels and its tick labels."""
    out = []
    for ax in fig.axes:
        out += [(ax, "label", t) for t in ax.texts if t.get_text()]
        for axis, name in ((ax.xaxis, "xtick"), (ax.yaxis, "ytick")):
            lo, hi = sorted(axis.get_view_interval())
            out += [(ax, name, tick.label1) for tick in axis.get_major_ticks()
                    if tick.label1.get_visible() and tick.label1.get_text()
                    and lo - 1e-12 <= tick.get_loc() <= hi + 1e-12]  # those drawn
    return out


@pytest.mark.parametrize("style", [SLIDES, pytest.param(PAPER, marks=pytest.mark.slow)],
                         ids=["slides", "paper"])
def test_no_text_overlaps_or_clips_with_the_longest_names(folder, style):
    """Every figure kind drawn with the examples' longest scenario name and title: no two
    labels of an axes and no two tick labels of an axis intersect, every text lies inside
    the figure, and the labels of bars and points inside their axes."""
    from matplotlib.text import Annotation, Text

    from simulator.report.figure_style import fit_titles
    from simulator.report.label_layout import overlaps
    saved = load(folder)
    makers = figure_makers(saved.rows, saved.scenarios, saved.title, [LONGEST_NAME, "dp 4"],
                           12, style)
    with styled(style):
        for kind, stem, make in makers:
            fig = make()
            fit_titles(fig)
            renderer = draw(fig)
            found = _axis_texts(fig)
            boxes = [(ax, what, t, Text.get_window_extent(t, renderer)) for ax, what, t in found]
            for ax, what, text, box in boxes:
                assert inside_figure(fig, text, renderer), (stem, text.get_text())
                if what == "label" and (isinstance(text, Annotation) or kind == "layers"):
                    frame = ax.get_window_extent(renderer)
                    assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1, (
                        stem, text.get_text())
            for (ax_a, what_a, a, box_a), (ax_b, what_b, b, box_b) in combinations(boxes, 2):
                if ax_a is ax_b and what_a == what_b and overlaps(box_a, box_b):
                    pytest.fail(f"{stem}: '{a.get_text()}' overlaps '{b.get_text()}'")


WIDE_NAMES = sorted({s.name for e in EXAMPLES for s in e.scenarios if len(s.name) > 32},
                    key=lambda n: (-len(n), n))


def _all_texts(fig) -> list:
    """Every text drawn: the figure's titles, legend entries, axes titles, axis labels, the
    tick labels inside each axis's range and the texts placed in the axes."""
    found = [t for t in fig.texts if t.get_text()]
    found += [t for legend in fig.legends for t in legend.get_texts() if t.get_text()]
    for ax in fig.axes:
        found += [t for t in (ax.title, ax.xaxis.label, ax.yaxis.label)
                  if t.get_text() and t.get_visible()]
    return found + [t for _, _, t in _axis_texts(fig)]  # ticks and the axes' texts


def test_paper_widths_are_selectable(folder, tmp_path, capsys):
    """`plot --style paper --width one-column` draws every kind 3.5 in wide (1,050 px at
    300 dpi) into STEM-paper-one-column.*, two-column 7.16 in; bad widths are one line."""
    work = tmp_path / "copy"
    shutil.copytree(folder, work)
    assert main(["plot", str(work), "--style", "paper", "--width", "one-column",
                 "--format", "png"]) == 0
    drawn = sorted(work.glob("*-paper-one-column.png"))
    assert {p.name.removesuffix("-paper-one-column.png") for p in drawn} >= set(STEMS)
    for path in drawn:
        width_px = int.from_bytes(path.read_bytes()[16:20], "big")  # the PNG's IHDR
        assert width_px == round(3.5 * PAPER.dpi), path.name
    for style, inches in ((ONE_COLUMN, 3.5), (PAPER.at("two-column"), 7.16), (PAPER, 7.16)):
        with styled(style):
            for _, stem, make in every_kind(folder, style):
                assert make().get_size_inches()[0] == pytest.approx(inches), (stem, inches)
    cases = [(["--style", "paper", "--width", "half"], "--width: 'half' is not one of "
              "one-column, two-column"),
             (["--width", "one-column"], "--width: one-column is a paper's width; add "
              "--style paper"),
             (["--style", "slides", "--width", "two-column"], "--width: two-column")]
    for args, message in cases:
        assert main(["plot", str(work), *args]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_experiment_picks_the_figures_style_and_width(tmp_path, capsys):
    """`outputs: {style: paper, width: one-column}` draws the run's figures so, and `plot`
    redraws them alike (byte for byte) unless told otherwise; a width without the paper
    style, or a style for a sweep, is one line naming the file, line and field."""
    path = tmp_path / "e.yaml"
    path.write_text("title: One column\nscenarios:\n  - name: a\n"
                    "    workload: {model: mlp, batch: 8}\n    hardware: {device: gtx-1080}\n"
                    "outputs: {formats: [png], style: paper, width: one-column}\n")
    out = tmp_path / "r"
    assert main(["run", str(path), "--out", str(out)]) == 0
    made = out / "breakdown-paper-one-column.png"
    assert made.is_file() and not (out / "breakdown.png").exists()
    assert "breakdown-paper-one-column.png" in (out / "report.html").read_text() or \
        "breakdown-paper-one-column" in (out / "report.md").read_text()
    before = made.read_bytes()
    made.unlink()
    assert main(["plot", str(out), "--kind", "breakdown", "--format", "png"]) == 0
    assert made.read_bytes() == before
    assert main(["plot", str(out), "--kind", "breakdown", "--style", "slides",
                 "--format", "png"]) == 0 and (out / "breakdown.png").is_file()
    capsys.readouterr()
    path.write_text(path.read_text().replace("style: paper, ", ""))
    assert main(["run", str(path), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "e.yaml:6: outputs.width: one-column is a paper's" in err
    sweep = tmp_path / "s.yaml"
    sweep.write_text("title: S\nsweep:\n  base:\n    workload: {model: mlp, batch: 8}\n"
                     "    hardware: {device: gtx-1080}\n  grid: {workload.batch: [8, 16]}\n"
                     "outputs: {style: paper}\n")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outputs.style: a sweep's figures are drawn as slides" in err


@pytest.mark.parametrize("style", [ONE_COLUMN, pytest.param(PAPER, marks=pytest.mark.slow)],
                         ids=["one-column", "two-column"])
def test_every_kind_reads_at_a_column_width(folder, style):
    """Every figure kind with the examples' longest scenario name and title: every text
    (titles, legend entries, axis and tick labels, the labels in the axes) lies inside the
    figure and no two of them overlap; no legend is wider than the figure."""
    from matplotlib.text import Text

    from simulator.report.figure_style import fit_titles
    from simulator.report.label_layout import overlaps
    with styled(style):
        for _, stem, make in every_kind(folder, style):
            fig = make()
            fit_titles(fig)
            renderer = draw(fig)
            assert fig.get_size_inches()[0] == pytest.approx(style.width())
            texts = _all_texts(fig)
            boxes = [(t, Text.get_window_extent(t, renderer)) for t in texts]
            for text, _ in boxes:
                assert inside_figure(fig, text, renderer), (stem, text.get_text())
            for (a, box_a), (b, box_b) in combinations(boxes, 2):
                if a is not b and overlaps(box_a, box_b):
                    pytest.fail(f"{stem}: '{a.get_text()}' overlaps '{b.get_text()}'")
            for legend in fig.legends:
                assert legend.get_window_extent(renderer).width <= fig.bbox.width, stem


def test_names_wrap_between_phrases():
    """The examples' longest scenario names break after a comma or before ` (`, ` on `,
    ` vs. `, ...: never inside `12 GTX 680` (the old wrap gave '... 12 GTX' / '680, ...')."""
    from simulator.report.figure_style import phrases, wrap_label

    assert WIDE_NAMES, "the examples have names longer than a line"
    assert wrap_label("stanford-2013 (3 servers, 12 GTX 680, 18,432 CUDA cores)") == (
        "stanford-2013 (3 servers,\n12 GTX 680, 18,432 CUDA cores)")
    assert wrap_label("GTX 1080 · train b16 vs. published") == (
        "GTX 1080 · train b16\nvs. published")
    assert phrases("resnet50 x 8 on h100, 2 nodes") == ["resnet50", "x 8", "on h100,",
                                                         "2 nodes"]
    for width in (32, 24):
        for name in WIDE_NAMES:
            lines = wrap_label(name, width).split("\n")
            assert " ".join(lines) == name
            assert all(len(line) <= width for line in lines), (name, lines)
            pieces = phrases(name)  # every break falls between two phrases
            ends = [len(" ".join(pieces[:i + 1])) for i in range(len(pieces))]
            breaks = [len(" ".join(lines[:i + 1])) for i in range(len(lines) - 1)]
            assert all(b in ends for b in breaks), (name, lines, pieces)


def _trained_rows(times_s: list[float]) -> list[dict]:
    return [{"name": f"run {i}", "hardware": f"hw{i % 2}", "status": "ok", "model": "mlp",
             "step_time_s": t / 1e5, "samples_per_s": 3.2e6 / t, "time_to_train_s": t,
             "dataset_size": 100_000} for i, t in enumerate(times_s)]


@pytest.mark.parametrize("style", [SLIDES, PAPER, ONE_COLUMN],
                         ids=["slides", "paper", "one-column"])
@pytest.mark.parametrize("times_s", [[5400.0, 216000.0], [0.4, 9.8, 60.0], [3e5, 2e7]],
                         ids=["hours-days", "seconds-minute", "days-months"])
def test_log_time_axis_is_fitted_to_the_data(style, times_s):
    """A log time-to-train axis spans the values (half a decade either side at most) plus
    the room its bar labels take, no more: its last label ends within a tenth of the axes'
    width of the right end (it ran to 10^7 s, 115 days, for 2.5 days of data); at least two
    ticks, in human units, all inside the values' half-decade margin."""
    from simulator.report.plot_comparison import comparison_figure

    with styled(style):
        fig = comparison_figure(_trained_rows(times_s), "t", style)
        renderer = draw(fig)
    ax = next(a for a in fig.axes if a.get_title() == "time to train ↓")
    assert ax.get_xscale() == "log"
    lo, hi = min(times_s), max(times_s)
    left, right = ax.get_xlim()
    assert lo / 10 ** 0.5 <= left < lo
    ticks = [(tick.get_loc(), tick.label1.get_text()) for tick in ax.xaxis.get_major_ticks()
             if tick.label1.get_text()]
    assert len(ticks) >= 2, ticks
    assert all(TIME_LABEL.match(label) for _, label in ticks), ticks
    assert all(lo / 10 ** 0.5 <= t <= hi * 10 ** 0.5 for t, _ in ticks), ticks
    frame = ax.get_window_extent(renderer)
    last = max(t.get_window_extent(renderer).x1 for t in ax.texts if t.get_text())
    assert frame.x1 - last <= 0.1 * frame.width, (right, last, frame.x1)


def packed_roofline(n: int = 45) -> dict:
    """A GPU panel whose ops cover it from edge to edge (intensity 1e-4 to 1e7 FLOP/byte,
    rates 100 FLOP/s to 4x the peak), and a copy, which the note counts."""
    data = dense_roofline(5)
    data["ops"] = []
    for i in range(n * n):
        intensity = 10 ** (-4 + 11 * (i % n) / (n - 1))
        rate = 10 ** (2 + 13.6 * (i // n) / (n - 1))
        data["ops"].append([f"d0.op{i}.fwd", 0, "gemm", "fwd", "bf16", 1e8, 1e8 / intensity,
                            1e8 / rate, 5e-6])
    data["ops"].append(["d0.copy", 0, "copy", "fwd", "bf16", 0, 1e6, 1e-5, 5e-6])
    data["end_s"] = sum(op[7] for op in data["ops"])
    return data


@pytest.mark.parametrize("style", [SLIDES, PAPER, ONE_COLUMN],
                         ids=["slides", "paper", "one-column"])
def test_roofline_note_covers_no_point(style):
    """On a panel covered with points the note (the launch floor, the ops not shown) goes
    where it covers no marker: a free place of the panel, else under the axes' label (it
    covered 20 points on a slide, 27 in a paper)."""
    from matplotlib.text import Text

    from simulator.report.label_layout import overlaps
    from simulator.report.plot_roofline import Panel, _marker_boxes, roofline_figure

    data = packed_roofline()
    with styled(style):
        fig = roofline_figure([("packed", data)], "t", style)
        renderer = draw(fig)
    ax = fig.axes[0]
    markers = _marker_boxes(Panel(ax, data, []), renderer)
    notes = [t for t in ax.texts if "floor (" in t.get_text()]
    for text in notes:
        box = Text.get_window_extent(text, renderer)
        assert not [m for m in markers if overlaps(box, m)], text.get_text()
    shown = [t.get_text() for t in notes] + [ax.get_xlabel()]
    assert sum("launch floor (" in t for t in shown) == 1, shown
    assert sum("1 op without FLOPs or bytes not shown" in t for t in shown) == 1, shown
    assert inside_figure(fig, ax.xaxis.label, renderer)
