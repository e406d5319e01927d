"""The published-vs-simulated table of a run (stanford_vs_google's articles' table)."""

from __future__ import annotations

import json

from simulator.report.published_table import published_rows, published_table, verdict
from simulator.report.units import format_time
from simulator.results.comparisons import passes_implied


def test_table_puts_published_beside_simulated_with_ratio():
    rows = [{"name": "a", "cores": 16000, "time_to_train_s": 86400.0,
             "published": {"cores": 16000, "time_to_train_s": 259200, "source": "paper"},
             "simulated_over_published": {"cores": 1.0, "time_to_train_s": 1 / 3}},
            {"name": "b", "cores": 1, "published": None}]
    text = published_table(rows)
    assert "| a | cores | input | 16,000 | 16,000 | 1.00x | same input |" in text
    assert "| a | time to train | predicted | 3 days | 24 h | 0.33x | off by 3.0x (lower) |" \
        in text  # times as units.format_time writes them (was "1 days")
    assert "| a | samples/s | predicted | — | — | — | — |" in text  # for every such row
    assert "- a: paper" in text and "| b |" not in text
    assert published_table([rows[1]]) == ""


def test_comparisons_passes_and_assumptions_follow_the_table():
    rows = [{"name": "a", "published": {"time_to_train_s": 300.0}, "time_to_train_s": 100.0,
             "epochs": 2, "simulated_over_published": {"time_to_train_s": 1 / 3}}]
    comp = [{"name": "a / b", "quantity": "time_to_train_s", "of": "a", "over": "b",
             "simulated": 3.0, "published": 1.5, "simulated_over_published": 2.0,
             "source": "papers"}]
    passes = passes_implied(rows)
    assert passes == [{"name": "a", "epochs_assumed": 2, "time_per_pass_s": 50.0,
                       "passes_in_published_time": 6.0}]
    text = published_table(rows, comp, passes, ["one pass"])
    assert "| a / b | time to train | a / b | 3.00x | 1.50x | 2.00x | within 2x (higher) |" \
        in text  # which scenarios, which quantity
    assert "- a: 2 passes assumed, 50 s per pass simulated; the published time is 6.0 passes" \
        in text
    assert "| 0.33x | off by 3.0x (lower); the published time is 6.0 passes |" in text
    assert text.rstrip().endswith("- one pass")


def test_main_job_writes_the_articles_table(cli, tmp_path):
    out = cli("run", "experiments/stanford_vs_google.yaml", "--out", str(tmp_path / "r"), "--quick")
    assert out.returncode == 0, out.stderr
    table = (tmp_path / "r" / "published.md").read_text()
    assert "google-2012" in table and "stanford-2013" in table and "18,432" in table
    rows = json.loads((tmp_path / "r" / "results.json").read_text())["scenarios"]
    google, stanford = rows[0], rows[2]
    assert google["cores"] == 16000 and stanford["cores"] == 18432
    for row in (google, stanford):
        assert row["time_to_train_s"] > 0 and row["energy_j"] > 0 and row["hardware_cost_usd"] > 0
    assert stanford["hardware_cost_usd"] < google["hardware_cost_usd"] / 100
    # like with like: whole systems, a ratio at equal work, passes stated
    for row in (google, stanford):
        assert row["network_cost_usd"] > 0 and row["servers"] > 0
    assert "| cores | input |" in table and "| time to train | predicted |" in table
    assert "| hardware cost | priced |" in table and "| samples/s | predicted |" in table
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    ratio = doc["comparisons"][0]
    assert ratio["quantity"] == "time_to_train_s" and ratio["published"] == 1.5
    assert ratio["simulated"] == google["time_to_train_s"] / stanford["time_to_train_s"]
    assert "Google / Stanford time to train" in table and "Passes over the data" in table
    assert any("passes" in a for a in doc["assumptions"])


def test_verdicts():
    assert verdict(1.08) == "agrees (within 10%)" and verdict(0.91) == "agrees (within 10%)"
    assert verdict(1.5) == "within 2x (higher)" and verdict(0.5) == "within 2x (lower)"
    assert verdict(0.19) == "off by 5.3x (lower)" and verdict(None) == "—"
    assert verdict(1.0, "input") == "same input" and verdict(2.0, "input") == "a different input"


def test_published_times_read_as_everywhere_else():
    rows = [{"name": "a", "step_time_s": 0.0123, "samples_per_s": 1234.0,
             "published": {"step_time_s": 0.01, "samples_per_s": 1000.0, "time_to_train_s": 5400}}]
    cells = {c[1]: c for c in published_rows(rows)}
    assert cells["step time"][3:5] == (format_time(0.01), format_time(0.0123)) == ("10 ms",
                                                                                   "12.3 ms")
    assert cells["time to train"][3] == format_time(5400) == "90 min"
    assert cells["samples/s"][3:5] == ("1,000", "1,234")  # a rate, not a time
