"""Searches complete (status COMPLETED, not a silently FAILED trial), resume without
repeating finished trials, refuse a different space, and balance the per-variant oracle."""

from __future__ import annotations

import json
from pathlib import Path

import keras_tuner as kt
import pytest

from tests.tuning.tiny_search import TINY, search_arguments
from tuning.__main__ import main
from tuning.oracles import PerVariantRandomSearchOracle, make_oracle
from tuning.report import load_trials


def _statuses(run_dir: Path) -> dict[str, str]:
    return {record.trial_id: record.status for record in load_trials(run_dir)}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("search") / "run"
    summary = main(search_arguments(run_dir))
    return run_dir, summary


def test_two_trial_search_completes_and_records_every_trial(searched):
    run_dir, summary = searched
    assert summary["trials"] == {"COMPLETED": 2}
    records = load_trials(run_dir)
    assert [r.status for r in records] == ["COMPLETED", "COMPLETED"], [r.message for r in records]
    assert sorted(r.cell for r in records) == ["gru", "vanilla"]
    for record in records:
        for name in (
            "val_loss",
            "test_loss",
            "param_count",
            "trial_wall_time_s",
            "fit_time_s",
            "epochs_trained",
        ):
            assert name in record.metrics, name
        assert 4 <= record.values["units"] <= 8
        assert record.values["optimizer"] == "adam" and record.values["clip_norm"] == 1.0
        worker = json.loads(
            (run_dir / "project" / f"trial_{record.trial_id}" / "worker.json").read_text()
        )
        assert worker["tuner_id"] == "tuner0"
    # parameter counts are those of the sampled widths (GRU with reset_after: 2 bias rows)
    gru = next(r for r in records if r.cell == "gru")
    units = gru.values["units"]
    assert gru.metrics["param_count"] == 3 * (2 * units + units * units + 2 * units) + units + 1
    saved = json.loads((run_dir / "search.json").read_text())
    assert saved["space"]["cells"] == ["vanilla", "gru"] and saved["per_variant"] == 1


def test_rerun_resumes_without_repeating_finished_trials(searched):
    run_dir, _ = searched
    before = {r.trial_id: (r.values, r.metrics) for r in load_trials(run_dir)}
    again = main(search_arguments(run_dir))
    assert again["trials"] == {"COMPLETED": 2}
    assert {r.trial_id: (r.values, r.metrics) for r in load_trials(run_dir)} == before
    # raising --per-variant extends the search: one more trial per cell, old ones kept
    extended = main(search_arguments(run_dir, per_variant=2))
    assert extended["trials"] == {"COMPLETED": 4}
    records = load_trials(run_dir)
    assert {r.trial_id: (r.values, r.metrics) for r in records if r.trial_id in before} == before
    assert sorted(r.cell for r in records) == ["gru", "gru", "vanilla", "vanilla"]
    sessions = [json.loads(line) for line in (run_dir / "sessions.jsonl").read_text().splitlines()]
    assert [line["event"] for line in sessions] == ["start", "end"] * 3
    assert [line["trials"] for line in sessions[1::2]] == [{"COMPLETED": 2}] * 2 + [{"COMPLETED": 4}]


def test_a_different_space_is_refused(searched, capsys):
    run_dir, _ = searched
    with pytest.raises(ValueError, match="units"):
        main(search_arguments(run_dir, task_arguments=[*TINY[:-1], "4,16"]))


def test_per_variant_oracle_gives_every_cell_its_trials():
    space = kt.HyperParameters()
    space.Choice("cell", ["vanilla", "nfg", "gru"])
    space.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    oracle = PerVariantRandomSearchOracle(
        cells=["vanilla", "nfg", "gru"],
        trials_per_cell=3,
        objective="val_loss",
        hyperparameters=space,
        seed=1,
    )
    oracle._set_project_dir("/tmp/unused_by_this_test", "p")  # noqa: S108 (never written: no save)
    oracle.save = lambda: None
    oracle._save_trial = lambda trial: None
    cells = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        cells.append(trial.hyperparameters.values["cell"])
        oracle.update_trial(trial.trial_id, {"val_loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert cells == ["vanilla", "nfg", "gru"] * 3
    rates = [t.hyperparameters.values["learning_rate"] for t in oracle.trials.values()]
    assert len(set(rates)) == 9  # fresh random values for every trial


def test_hyperband_refuses_per_variant():
    with pytest.raises(ValueError, match="random or bayesian"):
        make_oracle(
            "hyperband", kt.Objective("val_loss", "min"), 0, 1, 3, per_variant=2, cells=["gru"]
        )


def test_unknown_cell_and_missing_jsb_data_fail_before_any_trial(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown cell 'lstmx'"):
        main(["search", "--run-dir", str(tmp_path / "a"), "--cells", "lstmx", *TINY])
    with pytest.raises(ValueError, match="--data PATH"):
        main(["search", "--run-dir", str(tmp_path / "b"), "--task", "jsb"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        main(
            [
                "search",
                "--run-dir",
                str(tmp_path / "c"),
                "--task",
                "jsb",
                "--data",
                str(tmp_path / "missing.json"),
            ]
        )
    assert not (tmp_path / "b" / "project").exists()


@pytest.mark.slow
@pytest.mark.parametrize("oracle", ["bayesian", "hyperband"])
def test_bayesian_and_hyperband_complete(tmp_path, oracle):
    args = list(TINY)
    if oracle == "bayesian":  # one random trial, then two proposed by the Gaussian process
        extra = ["--per-variant", "3", "--initial-points", "1", "--cells", "gru"]
    else:  # brackets of 1 and 2 epochs; continued trials reload their checkpoints
        extra = ["--hyperband-factor", "2", "--cells", "vanilla,gru"]
        args[args.index("--epochs") + 1] = "2"
    summary = main(
        ["search", "--run-dir", str(tmp_path / oracle), "--oracle", oracle, *extra, *args]
    )
    records = load_trials(tmp_path / oracle)
    assert records and {r.status for r in records} == {"COMPLETED"}, summary
    if oracle == "bayesian":
        assert [r.cell for r in records] == ["gru"] * 3
        assert len({r.values["learning_rate"] for r in records}) == 3
    else:
        assert {r.values["tuner/epochs"] for r in records} == {1, 2}


@pytest.mark.slow
def test_mirrored_strategy_goes_to_the_tuner_constructor(tmp_path):
    import argparse

    from tuning.__main__ import _search_arguments, search_config
    from tuning.search import SearchConfig, make_tuner

    parser = argparse.ArgumentParser()
    _search_arguments(parser)
    config: SearchConfig = search_config(
        parser.parse_args(
            [
                "--run-dir",
                str(tmp_path / "m"),
                "--strategy",
                "mirrored",
                "--max-trials",
                "1",
                "--cells",
                "gru",
                *TINY,
            ]
        )
    )
    tuner = make_tuner(config)
    assert tuner.distribution_strategy.num_replicas_in_sync == 2  # the two logical CPUs of conftest
    tuner.search()
    assert set(_statuses(tmp_path / "m").values()) == {"COMPLETED"}
