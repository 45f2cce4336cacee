"""benchmarks/translation_ensemble: members trained within the budget on shared
SentencePiece models, pooled, evaluated and merged into the results file (tiny members on
the toy parallel data of tests/apps/test_translation)."""

from __future__ import annotations

import json

import pytest

from benchmarks import translation_ensemble
from tests.apps.test_translation import TINY, data_flags


@pytest.mark.slow
def test_members_share_vocabularies_and_the_pool_is_scored(tmp_path, monkeypatch):
    monkeypatch.setattr(translation_ensemble, "_COMMON", " ".join([*TINY, "--epochs", "2"]))
    monkeypatch.setattr(translation_ensemble, "SEEDS", [1, 2, 3])
    data = data_flags(tmp_path)
    results = tmp_path / "translation.json"

    figures = translation_ensemble.run(
        60, 5, data, tmp_path / "all", results, conditions="tests", command="the command"
    )
    saved = json.loads(results.read_text())
    assert saved == figures
    members = [tmp_path / "all" / f"member_{i:02d}" for i in (1, 2, 3)]
    assert [saved[f"ensemble_member_{i}_run_dir"] for i in (1, 2, 3)] == list(map(str, members))
    first, *others = (m / "vocab" / "target.model" for m in members)
    assert all(other.read_bytes() == first.read_bytes() for other in others)
    assert 0 <= saved["ensemble_valid_bleu_beam5"] <= 100
    assert saved["ensemble_train_wall_time_s"] == pytest.approx(
        sum(saved[f"ensemble_member_{i}_train_wall_time_s"] for i in (1, 2, 3)), abs=0.2
    )
    assert saved["ensemble_command"] == "the command" and saved["ensemble_conditions"] == "tests"
    assert json.loads((members[1] / "config.json").read_text())["seed"] == 2
