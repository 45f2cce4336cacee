"""The report on a fixed set of trials: table, Welch's t-tests, importance, plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from tuning.report import (
    TrialRecord,
    benchmark_figures,
    build_report,
    format_table,
    hyperparameter_importance,
    variant_table,
    welch_t_test,
)

RESULTS = {
    "vanilla": [8.0, 8.2, 8.4, 8.6],
    "nfg": [9.0, 9.5, 9.2, 9.8],
    "cifg": [8.1, 8.3, 8.5, 8.2],
}


def _records() -> list[TrialRecord]:
    records = []
    for cell, values in RESULTS.items():
        for index, value in enumerate(values):
            records.append(
                TrialRecord(
                    trial_id=f"{len(records):02d}",
                    status="COMPLETED",
                    values={
                        "cell": cell,
                        "units": 20 + 10 * index,
                        "learning_rate": 10.0 ** -(index + 1),
                    },
                    metrics={
                        "val_nll": value,
                        "param_count": 1000.0 + index,
                        "trial_wall_time_s": 10.0,
                    },
                )
            )
    records.append(
        TrialRecord("99", "FAILED", {"cell": "nfg", "units": 50}, {}, message="diverged")
    )
    return records


def _welch_by_hand(a, b):
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t, 2 * stats.t.sf(abs(t), df)


def test_table_rows_and_welch_values():
    rows = variant_table(
        _records(), "val_nll", baseline="vanilla", cells=["vanilla", "nfg", "cifg"]
    )
    by_variant = {row["variant"]: row for row in rows}
    assert [row["variant"] for row in rows] == ["vanilla", "nfg", "cifg"]
    vanilla, nfg, cifg = by_variant["vanilla"], by_variant["nfg"], by_variant["cifg"]
    assert vanilla["completed"] == 4 and vanilla["failed"] == 0 and vanilla["verdict"] == "baseline"
    assert vanilla["best"] == pytest.approx(8.0) and vanilla["median"] == pytest.approx(8.3)
    assert vanilla["mean"] == pytest.approx(8.3) and vanilla["std"] == pytest.approx(
        math.sqrt(0.2 / 3)
    )
    assert nfg["trials"] == 5 and nfg["completed"] == 4 and nfg["failed"] == 1
    assert nfg["mean"] == pytest.approx(9.375)
    t, p = _welch_by_hand(RESULTS["nfg"], RESULTS["vanilla"])
    assert nfg["t"] == pytest.approx(t) and nfg["p"] == pytest.approx(p)
    assert t == pytest.approx(4.943, abs=1e-3) and 0.001 < p < 0.01
    assert nfg["significant"] and nfg["verdict"] == "worse"
    t, p = _welch_by_hand(RESULTS["cifg"], RESULTS["vanilla"])
    assert cifg["p"] == pytest.approx(p) and p > 0.05 and cifg["verdict"] == "n.s."
    assert all(math.isnan(v) for v in welch_t_test([1.0], [2.0, 3.0]))  # below 2 samples

    table = format_table(rows, "val_nll", "vanilla", 0.05)
    lines = table.splitlines()
    assert lines[0].startswith("| variant | trials | failed | best val_nll | median | mean |")
    assert lines[2].startswith("| vanilla | 4 | 0 | 8.000 | 8.300 | 8.300 | 0.258 |")
    assert lines[3].startswith("| nfg | 4 | 1 | 9.000 | 9.350 | 9.375 |")
    assert "| **worse** |" in lines[3] and lines[4].endswith("| n.s. |")


def test_maximised_metric_verdicts_flip():
    records = [
        TrialRecord(str(i), "COMPLETED", {"cell": cell}, {"val_accuracy": value})
        for i, (cell, value) in enumerate(
            [
                ("vanilla", 0.80),
                ("vanilla", 0.82),
                ("vanilla", 0.81),
                ("gru", 0.90),
                ("gru", 0.91),
                ("gru", 0.92),
            ]
        )
    ]
    rows = {row["variant"]: row for row in variant_table(records, "val_accuracy")}
    assert rows["gru"]["verdict"] == "better" and rows["gru"]["best"] == pytest.approx(0.92)


def test_importance_finds_the_hyperparameter_that_matters():
    rng = np.random.default_rng(0)
    records = []
    for index in range(60):
        rate = 10 ** rng.uniform(-4, -1)
        units = int(rng.integers(20, 200))
        cell = ["vanilla", "nfg"][index % 2]
        value = 3.0 * abs(math.log10(rate) + 2.5) + rng.normal(0, 0.05)
        records.append(
            TrialRecord(
                str(index),
                "COMPLETED",
                {"cell": cell, "units": units, "learning_rate": rate, "optimizer": "adam"},
                {"val_nll": value},
            )
        )
    importance = hyperparameter_importance(records, "val_nll")
    names = [row["hyperparameter"] for row in importance]
    assert names[0] == "learning_rate" and "optimizer" not in names  # constant: left out
    by_name = {row["hyperparameter"]: row for row in importance}
    assert by_name["learning_rate"]["rf_main_effect"] > 0.8
    assert by_name["learning_rate"]["marginal_variance"] > 0.6
    assert by_name["units"]["rf_main_effect"] < 0.1 and by_name["cell"]["marginal_variance"] < 0.1


def test_report_of_a_search_directory(tmp_path):
    run_dir = tmp_path / "run"
    for record in _records():
        trial_dir = run_dir / "project" / f"trial_{record.trial_id}"
        trial_dir.mkdir(parents=True)
        metrics = {
            name: {"direction": "min", "observations": [{"value": [value], "step": 0}]}
            for name, value in record.metrics.items()
        }
        (trial_dir / "trial.json").write_text(
            json.dumps(
                {
                    "trial_id": record.trial_id,
                    "status": record.status,
                    "message": record.message,
                    "hyperparameters": {"space": [], "values": record.values},
                    "metrics": {"metrics": metrics},
                    "score": record.metrics.get("val_nll"),
                }
            )
        )
    (run_dir / "search.json").write_text(
        json.dumps(
            {
                "run_dir": str(run_dir),
                "task": "jsb",
                "space": {"cells": ["vanilla", "nfg", "cifg"]},
                "task_config": {"data": "unused.json"},
            }
        )
    )
    (run_dir / "sessions.jsonl").write_text(
        json.dumps(
            {
                "role": "tuner0",
                "wall_time_s": 120.0,
                "command": "python -m tuning search ...",
                "machine": "test",
            }
        )
        + "\n"
    )
    report = build_report(run_dir)
    assert report["metric"] == "val_nll" and report["trials"] == {"COMPLETED": 12, "FAILED": 1}
    assert report["search_wall_time_s"] == 120.0
    for name in ("report.md", "report.json", "ablation.png", "importance.png"):
        assert (run_dir / "report" / name).stat().st_size > 500, name
    saved = json.loads((run_dir / "report" / "report.json").read_text())
    assert [row["variant"] for row in saved["variants"]] == ["vanilla", "nfg", "cifg"]
    assert "| nfg | 4 | 1 |" in (run_dir / "report" / "report.md").read_text()
    figures = benchmark_figures(report, "ablation_test", "")
    assert figures["nfg_verdict"] == "worse" and figures["vanilla_median"] == pytest.approx(8.3)
    assert figures["command"] == "python -m tuning search ..." and figures["wall_time_s"] == 120.0
