"""benchmarks/sentiment_ensemble: members trained within the budget, resumed, ensembled
and merged into the results file (tiny members on generated reviews)."""

from __future__ import annotations

import json

import pytest

from benchmarks import sentiment_ensemble
from tests.apps.test_sentiment import write_data

TINY = (
    "--epochs 2 --embedding-size 16 --units 16 --min-frequency 1 --batch-size 600"
    " --max-length 60 --length-bucket-width 16 --learning-rate 0.01 --verbose 0"
    " --valid-fraction 0.2"
)


@pytest.mark.slow
def test_members_fill_the_budget_then_the_ensemble_is_scored(tmp_path, monkeypatch):
    monkeypatch.setattr(sentiment_ensemble, "_COMMON", TINY)
    monkeypatch.setattr(
        sentiment_ensemble,
        "MEMBERS",
        [("--vocab-size 200", "gru"), ("--vocab-size 150", "lstm"), ("--vocab-size 100", "gru")],
    )
    data_dir = str(write_data(tmp_path / "data"))
    results = tmp_path / "sentiment.json"
    results.write_text(json.dumps({"dataset": "generated reviews"}))

    metrics = sentiment_ensemble.run(60, data_dir, tmp_path / "all", results)
    figures = json.loads(results.read_text())
    assert len(metrics["member_test_accuracies"]) == 3
    assert figures["ensemble_test_accuracy"] == metrics["test_accuracy"] > 0.7
    assert figures["ensemble_cell"] == "gru+lstm" and figures["dataset"] == "generated reviews"
    assert figures["ensemble_benchmark_command"] == (
        "python -m benchmarks.sentiment_ensemble --budget-minutes 60"
    )
    assert "--seed 1235" in figures["ensemble_member_commands"][1]

    # Trained members are reused, not retrained, when the benchmark is run again.
    first = tmp_path / "all" / "member_01" / "metrics.json"
    stamp = first.stat().st_mtime_ns
    sentiment_ensemble.run(60, data_dir, tmp_path / "all", results)
    assert first.stat().st_mtime_ns == stamp

    # A budget smaller than one member: the first member trains, no second one starts.
    metrics = sentiment_ensemble.run(1e-6, data_dir, tmp_path / "one", results)
    assert len(metrics["member_test_accuracies"]) == 1
    assert not (tmp_path / "one" / "member_02").exists()
