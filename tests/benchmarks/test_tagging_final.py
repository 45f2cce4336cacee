"""benchmarks/tagging_final and tagging_levers on tiny members and generated CoNLL files:
dev and test recorded side by side, every test scoring counted, trained runs reused."""

from __future__ import annotations

import dataclasses
import json
import shlex

import pytest

from benchmarks import tagging_final, tagging_levers
from tests.apps.test_tagging import TINY, make_sentences, write_conll


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conll_final")
    return tuple(
        write_conll(folder / name, make_sentences(count, seed=seed))
        for name, count, seed in (("train.txt", 80, 1), ("dev.txt", 20, 2), ("test.txt", 20, 3))
    )


@pytest.mark.slow
def test_final_recipe_records_dev_and_test_and_counts_each_test_scoring(files, tmp_path, monkeypatch):
    train, dev, test = map(str, files)

    def member_arguments(index, run_dir, member_minutes):
        return ["train", "--run-dir", str(run_dir), "--task", "ner", "--train-file", train, "--dev-file", dev,
                "--seed", str(index), "--epochs", "2", "--max-train-minutes", f"{member_minutes:g}", *TINY]  # fmt: skip

    recipe = dataclasses.replace(
        tagging_final.RECIPES["ner"], member_arguments=member_arguments, members=2, member_minutes=5, test_file=test
    )
    monkeypatch.setitem(tagging_final.RECIPES, "ner", recipe)
    results = tmp_path / "tagging.json"
    figures = tagging_final.run("ner", tmp_path / "runs", results, conditions="tiny")
    assert figures["test_evaluations"] == 1
    for split in ("dev", "test"):
        assert 0 < figures[f"ner_final_{split}_f1"] <= 1
        assert len(figures[f"ner_final_{split}_member_f1"]) == 2
        assert f"ner_final_{split}_unseen_f1" in figures
    assert figures["ner_final_command"] == "python -m benchmarks.tagging_final ner"
    assert figures["ner_final_budget_minutes"] == 60.0 and figures["ner_final_conditions"] == "tiny"
    assert figures["ner_final_members"] == 2 and "--seed 1" in figures["ner_final_member_commands"][1]

    # A rerun reuses the members and counts its test scoring too.
    stamp = (tmp_path / "runs" / "member_01" / "checkpoints" / "final.keras").stat().st_mtime_ns
    again = tagging_final.run("ner", tmp_path / "runs", results, conditions="tiny")
    assert (tmp_path / "runs" / "member_01" / "checkpoints" / "final.keras").stat().st_mtime_ns == stamp
    assert again["test_evaluations"] == 2 and len(again["test_evaluation_log"]) == 2
    assert again["ner_final_test_f1"] == pytest.approx(figures["ner_final_test_f1"])


@pytest.mark.slow
def test_levers_train_once_and_record_all_and_unseen_dev_scores(files, tmp_path, monkeypatch):
    train, dev, _ = map(str, files)
    monkeypatch.setattr(tagging_levers, "RECIPE", "--task ner " + shlex.join(TINY))
    results = tmp_path / "tagging.json"
    scores = tagging_levers.run(["baseline", "rare_word_dropout"], 2, train, dev, tmp_path / "levers", results, "tiny")
    figures = json.loads(results.read_text())
    for name in ("baseline", "rare_word_dropout"):
        assert figures[f"ner_lever_{name}_f1"] == pytest.approx(scores[name]["dev_f1"])
        assert "ner_lever_" + name + "_unseen_f1" in figures and figures[f"ner_lever_{name}_conditions"] == "tiny"
        assert figures[f"ner_lever_{name}_epochs_trained"] == 2
    assert figures["ner_lever_rare_word_dropout_command"] == (
        "python -m benchmarks.tagging_levers --levers rare_word_dropout --epochs 2"
    )
    config = json.loads((tmp_path / "levers" / "rare_word_dropout" / "config.json").read_text())
    assert config["rare_word_dropout"] == 1.0 and config["epochs"] == 2
    checkpoint = tmp_path / "levers" / "baseline" / "checkpoints" / "final.keras"
    stamp = checkpoint.stat().st_mtime_ns
    again = tagging_levers.run(["baseline"], 2, train, dev, tmp_path / "levers", results)
    assert checkpoint.stat().st_mtime_ns == stamp  # reused, not retrained
    assert again["baseline"]["dev_f1"] == pytest.approx(scores["baseline"]["dev_f1"])
    with pytest.raises(ValueError, match="unknown lever"):
        tagging_levers.lever_arguments("nope", 1, train, dev, tmp_path)
