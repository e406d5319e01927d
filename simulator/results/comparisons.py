"""Ratios between scenarios of an experiment (`comparisons:`), beside the published ratios,
and what the published times imply.

`comparison_rows(experiment, rows)`: per comparison, the simulated ratio `of / over` of its
quantity, the published ratio and simulated / published (None where a number is missing).
`passes_implied(rows)`: per scenario with a published `time_to_train_s`, the passes over its
dataset that the published time allows at the simulated rate (published time / simulated
time of one pass): what the unpublished number of passes would have to be for the two to
agree.
"""

from __future__ import annotations

from typing import Any

from simulator.config.schema import Experiment


def _ratio(a: Any, b: Any) -> float | None:
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    return a / b if ok and b else None


def comparison_rows(experiment: Experiment, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {row["name"]: row for row in rows}
    out = []
    for comp in experiment.comparisons:
        simulated = _ratio(by_name[comp.of].get(comp.quantity),
                           by_name[comp.over].get(comp.quantity))
        out.append({"name": comp.name, "quantity": comp.quantity, "of": comp.of,
                    "over": comp.over, "simulated": simulated, "published": comp.published,
                    "simulated_over_published": _ratio(simulated, comp.published),
                    "source": comp.source})
    return out


def passes_implied(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        published = (row.get("published") or {}).get("time_to_train_s")
        per_pass = _ratio(row.get("time_to_train_s"), row.get("epochs"))
        passes = _ratio(published, per_pass)
        if passes is not None:
            out.append({"name": row["name"], "epochs_assumed": row["epochs"],
                        "time_per_pass_s": per_pass, "passes_in_published_time": passes})
    return out
