"""report.md and report.html: the sections, the key numbers and the figures are there, the
page fetches nothing, and headless Chromium loads it without console errors and shows every
figure (driven over the DevTools protocol on a pipe: no extra packages)."""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from simulator.__main__ import main
from simulator.report.published_table import published_rows
from simulator.report.units import format_count, format_time

EXPERIMENT = """title: Report page <&> check
description: Two scenarios & a published number.
scenarios:
  - name: gpu | train
    workload: {model: mlp, batch: 32, mode: train, dataset_size: 100000}
    hardware: {device: gtx-1080}
    published: {time_to_train_s: 60, source: made up}
  - name: cpu
    workload: {model: mlp, batch: 32, mode: train}
    hardware: {device: i7-10700}
"""
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("page")
    (base / "e.yaml").write_text(EXPERIMENT)
    assert main(["run", str(base / "e.yaml"), "--out", str(base / "out")]) == 0
    return base / "out"


def rows(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / "results.json").read_text())["scenarios"]


def key_numbers(folder: Path) -> list[str]:
    out = []
    for row in rows(folder):
        out += [format_time(row["step_time_s"]), format_count(row["samples_per_s"])]
    out += [cells[4] for cells in published_rows(rows(folder))]  # e.g. "0.42x"
    prov = json.loads((folder / "results.json").read_text())["provenance"]
    return out + [prov["config_sha256"]]


def test_markdown_report(folder):
    text = (folder / "report.md").read_text()
    for heading in ("# Report page <&> check", "## Configuration", "## Key numbers",
                    "## Published vs simulated", "## Figures", "## Provenance"):
        assert f"\n{heading}\n" in f"\n{text}", heading
    for number in key_numbers(folder):
        assert number in text, number
    assert "gpu \\| train" in text  # a | in a name does not break the table
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (folder / link).is_file(), link


def test_html_is_self_contained(folder):
    page = (folder / "report.html").read_text()
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    images = re.findall(r"<img\b", page)
    assert len(images) >= 5 and len(sources) == len(images)
    assert all(src.startswith("data:image/") for src in sources)
    assert "<script" not in page and "Report page &lt;&amp;&gt; check" in page
    for number in key_numbers(folder):
        assert number in page, number


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class DevTools:
    """The DevTools protocol over --remote-debugging-pipe: JSON messages ended by NUL,
    commands on the browser's fd 3, replies and events from its fd 4."""

    def __init__(self, browser: str, profile: Path) -> None:
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
        args = [browser, "--headless", "--remote-debugging-pipe", "--no-sandbox",
                "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}", "about:blank"]
        wire = f'exec "$@" 3<&{high[0]} 4>&{high[1]}'  # bash puts the pipe on fds 3 and 4
        self.proc = subprocess.Popen(["bash", "-c", wire, "bash", *args], pass_fds=high,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_browser, from_browser, *high):
            os.close(fd)
        self._buffer, self._next, self.events = b"", 0, []

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from the browser")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next:
                assert "error" not in reply, reply
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._message(deadline))

    def load(self, page: Path) -> str:
        """Open `page` in a new tab and wait for its load event; returns the tab's session."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session)
        self.call("Page.navigate", session, url=page.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        return session

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._write)
        os.close(self._read)


def _errors(events: list[dict[str, Any]]) -> list[Any]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(params)
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(params)
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            found.append(params)
    return found


def test_report_opens_in_headless_chromium(folder, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium; .ci/run installs it)")
    tools = DevTools(browser, tmp_path / "profile")
    try:
        session = tools.load(folder / "report.html")
        probe = ("JSON.stringify({images: [...document.images].map(i => [i.complete, "
                 "i.naturalWidth]), text: document.body.innerText})")
        result = tools.call("Runtime.evaluate", session, expression=probe, returnByValue=True)
        seen = json.loads(result["result"]["value"])
    finally:
        tools.close()
    assert _errors(tools.events) == []
    page = (folder / "report.html").read_text()
    assert len(seen["images"]) == page.count("<img ") >= 5
    assert all(complete and width > 0 for complete, width in seen["images"]), seen["images"]
    for number in key_numbers(folder):
        assert number in seen["text"], number


def test_browser_check_sees_a_broken_image(tmp_path):
    """The check can fail: a page with a broken image and a console error is caught."""
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium; .ci/run installs it)")
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><img src="data:image/png;base64,AAAA">'
                    "<script>console.error('boom')</script>")
    tools = DevTools(browser, tmp_path / "profile")
    try:
        session = tools.load(page)
        result = tools.call("Runtime.evaluate", session, returnByValue=True,
                            expression="document.images[0].naturalWidth")
    finally:
        tools.close()
    assert result["result"]["value"] == 0
    assert _errors(tools.events)


def test_report_shows_what_the_console_shows(tmp_path):
    """The main job's report: the published section of report.md is published.md's table,
    verdicts, comparisons (which scenarios, which quantity), passes and assumptions, and
    report.html shows the same cells."""
    out = tmp_path / "sg"
    assert main(["run", str(Path(__file__).parents[1] / "experiments/stanford_vs_google.yaml"),
                 "--out", str(out), "--quick"]) == 0
    published = (out / "published.md").read_text().split("\n", 2)[2]
    report = (out / "report.md").read_text()
    section = report.split("## Published vs simulated\n\n", 1)[1].split("\n## ", 1)[0]
    assert section.strip() == published.strip()
    for text in ("| verdict |", "Ratios between scenarios", "| scenarios (of / over) |",
                 "Passes over the data", "Assumptions:", "Sources:", "| kind |"):
        assert text in section, text
    page = (out / "report.html").read_text()
    doc = json.loads((out / "results.json").read_text())
    for cells in published_rows(doc["scenarios"], doc["passes_implied"]):
        assert "<td>" + "</td><td>".join(cells[:3]) in page  # scenario, quantity, kind
        assert all(html.escape(c) in page for c in cells)
    for comparison in doc["comparisons"]:
        assert html.escape(f"{comparison['of']} / {comparison['over']}") in page
    assert all(html.escape(a) in page for a in doc["assumptions"])
