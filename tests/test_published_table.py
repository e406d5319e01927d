"""The published-vs-simulated table of a run (stanford_vs_google's articles' table)."""

from __future__ import annotations

import json

from simulator.report.published_table import published_table
from simulator.results.comparisons import passes_implied


def test_table_puts_published_beside_simulated_with_ratio():
    rows = [{"name": "a", "cores": 16000, "time_to_train_s": 86400.0,
             "published": {"cores": 16000, "time_to_train_s": 259200, "source": "paper"},
             "simulated_over_published": {"cores": 1.0, "time_to_train_s": 1 / 3}},
            {"name": "b", "cores": 1, "published": None}]
    text = published_table(rows)
    assert "| a | cores | input | 16,000 | 16,000 | 1.00x |" in text
    assert "| a | time to train | predicted | 3 days | 1 days | 0.33x |" in text
    assert "| a | samples/s | predicted | — | — | — |" in text  # shown for every such row
    assert "- a: paper" in text and "| b |" not in text
    assert published_table([rows[1]]) == ""


def test_comparisons_passes_and_assumptions_follow_the_table():
    rows = [{"name": "a", "published": {"time_to_train_s": 300.0}, "time_to_train_s": 100.0,
             "epochs": 2}]
    comp = [{"name": "a / b", "simulated": 3.0, "published": 1.5,
             "simulated_over_published": 2.0, "source": "papers"}]
    passes = passes_implied(rows)
    assert passes == [{"name": "a", "epochs_assumed": 2, "time_per_pass_s": 50.0,
                       "passes_in_published_time": 6.0}]
    text = published_table(rows, comp, passes, ["one pass"])
    assert "| a / b | 3.00x | 1.50x | 2.00x |" in text
    assert "- a: 2 passes assumed, 50 s per pass simulated; the published time is 6.0 passes" \
        in text
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
