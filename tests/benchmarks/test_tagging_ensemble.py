"""benchmarks/tagging_ensemble: members trained within the budget, reused, pooled and
merged into the results file (tiny members on generated CoNLL-U)."""

from __future__ import annotations

import json

import pytest

from benchmarks import tagging_ensemble
from tests.apps.test_tagging import make_sentences, write_conllu

TINY = (
    "--task pos --units 8 --char-units 4 --char-embedding-size 6 --word-embedding-size 8"
    " --batch-size 16 --learning-rate 0.02 --dropout 0.1 --epochs 2 --verbose 0"
)


@pytest.mark.slow
def test_members_fill_the_budget_then_the_pool_is_scored(tmp_path, monkeypatch):
    monkeypatch.setattr(tagging_ensemble, "_COMMON", TINY)
    monkeypatch.setattr(tagging_ensemble, "MEMBERS", [("lstm", 1), ("gru", 2), ("lstm", 3)])
    train = str(write_conllu(tmp_path / "train.conllu", make_sentences(60, seed=1)))
    dev = str(write_conllu(tmp_path / "dev.conllu", make_sentences(20, seed=2)))
    results = tmp_path / "tagging.json"

    metrics = tagging_ensemble.run(60, 5, train, dev, tmp_path / "all", results, ("lstm", "cnn"), "mixed")
    figures = json.loads(results.read_text())
    assert len(metrics["member_dev_accuracy"]) == 3
    assert figures["mixed_accuracy"] == metrics["dev_accuracy"] > 0.5
    assert figures["mixed_command"] == (
        "python -m benchmarks.tagging_ensemble --budget-minutes 60 --member-minutes 5"
        " --char-encoders lstm,cnn --results-prefix mixed"
    )
    commands = figures["mixed_member_commands"]
    assert "--cell gru" in commands[1] and "--seed 3" in commands[2]
    assert "--max-train-minutes 5" in commands[0]
    # Member commands name the options that differ from the defaults (lstm characters).
    assert ["--char-encoder cnn" in command for command in commands] == [False, True, False]

    # Trained members are reused, not retrained, when the benchmark is run again, here to
    # decode the same pool by its marginals.
    first = tmp_path / "all" / "member_01" / "checkpoints" / "final.keras"
    stamp = first.stat().st_mtime_ns
    posterior = tagging_ensemble.run(
        60, 5, train, dev, tmp_path / "all", results, ("lstm", "cnn"), "mixed_posterior", "posterior"
    )
    assert first.stat().st_mtime_ns == stamp
    figures = json.loads(results.read_text())
    assert figures["mixed_posterior_accuracy"] == posterior["dev_accuracy"] > 0.5
    assert figures["mixed_posterior_command"].endswith("--results-prefix mixed_posterior --decoding posterior")
    assert figures["mixed_accuracy"] == metrics["dev_accuracy"]  # the first figures are kept

    # A budget smaller than one member: the first member trains, no second one starts; a
    # replicate shifts the seeds.
    metrics = tagging_ensemble.run(1e-6, 5, train, dev, tmp_path / "one", results, seed_offset=100)
    assert len(metrics["member_dev_accuracy"]) == 1
    figures = json.loads(results.read_text())
    assert "pos_dev_ensemble_accuracy" in figures and figures["pos_dev_ensemble_command"].endswith("--seed-offset 100")
    assert "--seed 101" in figures["pos_dev_ensemble_member_commands"][0]
    assert not (tmp_path / "one" / "member_02").exists()
