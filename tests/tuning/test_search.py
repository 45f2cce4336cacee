"""Searches complete (status COMPLETED, not a silently FAILED trial), resume without
repeating finished trials, even after kill -9, refuse a different space, and balance
the per-variant oracle."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner as kt
import pytest

from tests.tuning.tiny_search import TINY, search_arguments
from tuning.__main__ import main
from tuning.oracles import PerVariantRandomSearchOracle
from tuning.report import load_trials

REPO = Path(__file__).resolve().parents[2]


def _trials(run_dir: Path) -> dict[str, tuple]:
    """Trial id -> (status, values, metrics) of every trial in `run_dir`."""
    return {r.trial_id: (r.status, r.values, r.metrics) for r in load_trials(run_dir)}


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
            "val_mse",
            "test_mse",
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
    assert saved["task"] == "adding" and saved["task_config"]["length"] == 8


def test_rerun_resumes_without_repeating_finished_trials(searched, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(searched[0], run_dir)
    before = _trials(run_dir)
    again = main(search_arguments(run_dir))
    assert again["trials"] == {"COMPLETED": 2}
    assert _trials(run_dir) == before
    # raising --per-variant extends the search: one more trial per cell, old ones kept
    extended = main(search_arguments(run_dir, per_variant=2))
    assert extended["trials"] == {"COMPLETED": 4}
    after = _trials(run_dir)
    assert {key: value for key, value in after.items() if key in before} == before
    assert sorted(values["cell"] for _, values, _ in after.values()) == ["gru", "gru", "vanilla", "vanilla"]
    sessions = [json.loads(line) for line in (run_dir / "sessions.jsonl").read_text().splitlines()]
    assert [line["event"] for line in sessions] == ["start", "end"] * 3
    assert [line["trials"] for line in sessions[1::2]] == [{"COMPLETED": 2}] * 2 + [{"COMPLETED": 4}]


def _edit_json(path: Path, change) -> None:
    state = json.loads(path.read_text())
    change(state)
    path.write_text(json.dumps(state))


def _finished_but_unrecorded(project: Path) -> None:
    """Killed in `end_trial` after trial 1's file said COMPLETED, before oracle.json did."""

    def change(state):
        state["end_order"].remove("1")
        state["ongoing_trials"] = {"tuner0": "1"}

    _edit_json(project / "oracle.json", change)


def _started_but_unrecorded(project: Path) -> None:
    """Killed in `create_trial` after trial 1's file was written, before oracle.json was."""

    def change_oracle(state):
        for key in ("start_order", "end_order"):
            state[key].remove("1")
        state["run_times"].pop("1", None)
        state["tried_so_far"].remove(state["id_to_hash"].pop("1"))

    def change_trial(state):
        state.update(status="RUNNING", score=None, best_step=0)
        state["metrics"] = {"metrics": {}}

    _edit_json(project / "oracle.json", change_oracle)
    _edit_json(project / "trial_1" / "trial.json", change_trial)
    (project / "trial_1" / "worker.json").unlink()


def _before_the_tuner_file(project: Path) -> None:
    """Killed before the tuner first wrote its own file (keras-tuner reloads only then)."""
    (project / "tuner0.json").unlink()


@pytest.mark.parametrize(
    ("kill", "run_again"),
    [(_finished_but_unrecorded, []), (_started_but_unrecorded, ["1"]), (_before_the_tuner_file, [])],
)
def test_a_rerun_after_a_kill_between_two_state_files_loses_and_repeats_nothing(
    searched, tmp_path, kill, run_again
):
    # The states a kill -9 can leave between keras-tuner's writes, made exactly.
    run_dir = tmp_path / "run"
    shutil.copytree(searched[0], run_dir)
    before, runs = _trials(run_dir), _runs(run_dir)
    kill(run_dir / "project")
    summary = main(search_arguments(run_dir))
    after = _trials(run_dir)
    assert summary["trials"] == {"COMPLETED": 2} and sorted(after) == ["0", "1"]
    for trial_id, (status, values, metrics) in after.items():
        if trial_id in run_again:  # interrupted: run again, under its own id and values
            assert status == "COMPLETED" and values == before[trial_id][1]
        else:  # finished: kept as it was, and not run again
            assert (status, values, metrics) == before[trial_id]
            assert _runs(run_dir)[trial_id] == runs[trial_id]


def _runs(run_dir: Path) -> dict[str, str]:
    """Trial id -> its worker.json (which process ran it and when; rewritten by every run)."""
    return {
        path.parent.name.removeprefix("trial_"): path.read_text()
        for path in run_dir.glob("project/trial_*/worker.json")
    }


@pytest.mark.slow
def test_a_search_killed_with_sigkill_resumes_without_losing_or_repeating_a_trial(tmp_path):
    run_dir = tmp_path / "run"
    options = list(TINY)
    options[options.index("--steps-per-epoch") + 1] = "20"  # trials of a few seconds
    arguments = search_arguments(run_dir, per_variant=2, task_arguments=options)
    process = subprocess.Popen(
        [sys.executable, "-m", "tuning", *arguments],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600  # a guard against a hung search, not a timing
        while not any(status == "COMPLETED" for status, _, _ in _polled(run_dir).values()):
            assert process.poll() is None, "the search ended before its first trial finished"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    finished = {key: value for key, value in _trials(run_dir).items() if value[0] == "COMPLETED"}
    runs = _runs(run_dir)
    assert len(finished) < 4
    summary = main(arguments)
    after = _trials(run_dir)
    assert summary["trials"] == {"COMPLETED": 4}
    assert sorted(after) == ["0", "1", "2", "3"]
    assert {key: after[key] for key in finished} == finished  # kept,
    assert {key: _runs(run_dir)[key] for key in finished} == {key: runs[key] for key in finished}
    assert sorted(values["cell"] for _, values, _ in after.values()) == ["gru", "gru", "vanilla", "vanilla"]


def _polled(run_dir: Path) -> dict[str, tuple]:
    return _trials(run_dir) if list(run_dir.glob("project/trial_*/trial.json")) else {}


def test_a_different_space_is_refused(searched):
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


def test_unknown_cell_and_missing_jsb_data_fail_before_any_trial(tmp_path):
    with pytest.raises(ValueError, match="unknown cell 'lstmx'"):
        main(search_arguments(tmp_path / "a", cells="lstmx"))
    with pytest.raises(ValueError, match="--data PATH"):
        main(["search", "jsb", "--run-dir", str(tmp_path / "b")])
    with pytest.raises(FileNotFoundError, match="no such file"):
        main(["search", "jsb", "--run-dir", str(tmp_path / "c"), "--data",
              str(tmp_path / "missing.json")])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert not (tmp_path / "c" / "project").exists()


@pytest.mark.slow
@pytest.mark.parametrize("oracle", ["bayesian", "hyperband"])
def test_bayesian_and_hyperband_complete(tmp_path, oracle):
    task, *options = TINY
    if oracle == "bayesian":  # one random trial, then two proposed by the Gaussian process
        extra = ["--per-variant", "3", "--initial-points", "1", "--cells", "gru"]
    else:  # brackets of 1 and 2 epochs; continued trials reload their checkpoints
        extra = ["--hyperband-factor", "2", "--cells", "vanilla,gru"]
        options[options.index("--epochs") + 1] = "2"
    run_dir = tmp_path / oracle
    summary = main(
        ["search", task, "--run-dir", str(run_dir), "--oracle", oracle, *extra, *options]
    )
    records = load_trials(run_dir)
    assert records and {r.status for r in records} == {"COMPLETED"}, summary
    if oracle == "bayesian":
        assert [r.cell for r in records] == ["gru"] * 3
        assert len({r.values["learning_rate"] for r in records}) == 3
    else:
        assert {r.values["tuner/epochs"] for r in records} == {1, 2}
        continued = [r for r in records if r.values.get("tuner/initial_epoch")]
        assert continued and all(r.metrics["epochs_trained"] == 2 for r in continued)


@pytest.mark.slow
def test_mirrored_strategy_goes_to_the_tuner_constructor(tmp_path):
    from tuning.__main__ import build_parser, search_config
    from tuning.search import make_tuner

    task, *options = TINY
    config = search_config(
        build_parser().parse_args(
            ["search", task, "--run-dir", str(tmp_path / "m"), "--strategy", "mirrored",
             "--max-trials", "1", "--cells", "gru", *options]
        )
    )
    tuner = make_tuner(config)
    assert tuner.distribution_strategy.num_replicas_in_sync == 2  # the two logical CPUs of conftest
    tuner.search()
    assert {status for status, _, _ in _trials(tmp_path / "m").values()} == {"COMPLETED"}
