"""README tables are generated from benchmarks/results: they cannot go stale."""

from __future__ import annotations

import json

import pytest

from benchmarks import summary
from benchmarks.tables import TABLES


def test_every_readme_table_matches_the_results_files():
    changed = summary.stale(TABLES)
    assert not changed, (
        f"stale README tables in {sorted(str(p) for p in changed)}: "
        "run python -m benchmarks.summary --write"
    )


def test_a_changed_figure_makes_its_table_stale(tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    (results / "toy.json").write_text(json.dumps({
        "a_accuracy": 0.9, "a_command": "python -m apps.toy train --data /work/shared/data/x",
        "a_date": "2026-12-07T10:00:00", "a_train_wall_time_s": 120.0, "machine": "m",
    }))
    (tmp_path / "README.md").write_text("intro\n<!-- table:toy -->\nold\n<!-- /table:toy -->\nend\n")
    monkeypatch.setattr(summary, "RESULTS", results)
    monkeypatch.setattr(summary, "ROOT", tmp_path)
    table = summary.RunTable("README.md", [summary.Column("accuracy", "accuracy", summary.percent)],
                             [summary.Row("toy", "a", "model A")])
    changed = summary.stale({"toy": table})
    text = changed[tmp_path / "README.md"]
    assert text.startswith("intro\n<!-- table:toy -->\n| what | accuracy |") and text.endswith(
        "<!-- /table:toy -->\nend\n")
    row = text.splitlines()[4]
    assert row == ("| model A | 90.00 % | 2.0 min | 2026-12-07 | m | "
                   "`python -m apps.toy train --data ../shared/data/x` |")
    (tmp_path / "README.md").write_text(text)
    assert summary.stale({"toy": table}) == {}
    data = json.loads((results / "toy.json").read_text())
    (results / "toy.json").write_text(json.dumps({**data, "a_accuracy": 0.91}))
    assert "91.00 %" in summary.stale({"toy": table})[tmp_path / "README.md"]
    with pytest.raises(ValueError, match="no <!-- table:NAME --> block"):
        summary.stale({"toy": table, "other": table})


def test_budget_machine_and_missing_figures(tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    (results / "toy.json").write_text(json.dumps({
        "a_bleu": 30.0, "a_command": "python -m x", "a_date": "2026-12-07", "a_train_wall_s": 60.0,
        "a_conditions": "idle", "b_bleu": 31.0, "b_test_bleu": 29.0, "b_budget_minutes": 45.0,
        "b_command": "python -m y", "b_machine": "AMX box", "machine": "file machine",
    }))
    monkeypatch.setattr(summary, "RESULTS", results)
    summary._CACHE.clear()
    table = summary.RunTable(
        "README.md",
        [summary.Column("val", "bleu"), summary.Column("test", "test_bleu", missing="not measured yet")],
        [summary.Row("toy", "a", "A", wall_key="train_wall_s", budget_minutes=88),
         summary.Row("toy", "b", "B", budget_minutes=88),
         summary.Row("toy", "c", "C (not run)", budget_minutes=60)],
        budget=True, machine=True,
    )
    lines = table.render().splitlines()
    assert lines[0] == ("| what | val | test | training time | budget | date | machine | conditions | "
                        "command |")
    # the file's machine for a recorded run; the run's own budget over the declared one
    assert lines[2] == ("| A | 30.00 | not measured yet | 1.0 min | 88 min | 2026-12-07 | file machine | "
                        "idle | `python -m x` |")
    assert lines[3] == "| B | 31.00 | 29.00 | - | 45 min | - | AMX box | - | `python -m y` |"
    assert lines[4] == "| C (not run) | - | not measured yet | - | 60 min | - | - | - | - |"
    summary._CACHE.clear()
