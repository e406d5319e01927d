"""The published-vs-simulated table of a run (stanford_vs_google's articles' table)."""

from __future__ import annotations

import json

from simulator.report.published_table import published_table


def test_table_puts_published_beside_simulated_with_ratio():
    rows = [{"name": "a", "cores": 16000, "time_to_train_s": 86400.0,
             "published": {"cores": 16000, "time_to_train_s": 259200, "source": "paper"},
             "simulated_over_published": {"cores": 1.0, "time_to_train_s": 1 / 3}},
            {"name": "b", "cores": 1, "published": None}]
    text = published_table(rows)
    assert "| a | cores | 16,000 | 16,000 | 1.00x |" in text
    assert "| a | time to train | 3 days | 1 days | 0.33x |" in text
    assert "- a: paper" in text and "| b |" not in text
    assert published_table([rows[1]]) == ""


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
