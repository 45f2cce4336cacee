"""The built-in tasks: JSB Chorales (through pipelines.music) and the exactness of its
metric, the procedural tasks' chance levels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.errors import DataFormatError
from tuning.__main__ import main
from tuning.report import load_trials
from tuning.task_models import frame_nll, jsb_data, jsb_model
from tuning.tasks import JSBConfig


def _chorales(count: int, seed: int) -> list[list[list[int]]]:
    rng = np.random.default_rng(seed)
    chorales = []
    for _ in range(count):
        length = int(rng.integers(3, 12))
        chorales.append(
            [
                sorted({int(p) for p in rng.integers(55, 80, size=rng.integers(0, 4))})
                for _ in range(length)
            ]
        )
    return chorales


@pytest.fixture
def jsb_file(tmp_path):
    path = tmp_path / "chorales.json"
    path.write_text(
        json.dumps({"train": _chorales(12, 0), "valid": _chorales(5, 1), "test": _chorales(4, 2)})
    )
    return path


def test_nll_is_exact_per_time_step_across_padded_batches(jsb_file):
    config = JSBConfig(data=str(jsb_file), batch_size=2, cell="vanilla", units=6)
    model = jsb_model(config)
    result = model.evaluate(jsb_data(config).validation, verbose=0, return_dict=True)
    # reference: every chorale alone (no padding), all steps pooled
    from pipelines.music import read_jsb

    total, steps = 0.0, 0
    for roll in read_jsb(str(jsb_file))["valid"]:
        logits = model.predict(roll[None, :-1], verbose=0)
        total += float(np.sum(frame_nll(roll[None, 1:], logits)))
        steps += len(roll) - 1
    assert result["nll"] == pytest.approx(total / steps, rel=1e-5)
    # an untrained network is close to 88 fair coins per step
    assert 30 < result["nll"] < 88 * np.log(2) * 1.5


@pytest.mark.slow
def test_jsb_trial_completes_with_a_test_split(jsb_file, tmp_path):
    run_dir = tmp_path / "run"
    main(
        [
            "search",
            "jsb",
            "--run-dir",
            str(run_dir),
            "--data",
            str(jsb_file),
            "--batch-size",
            "4",
            "--epochs",
            "1",
            "--units",
            "4,6",
            "--max-trials",
            "1",
            "--cells",
            "cifg",
        ]
    )
    (record,) = load_trials(run_dir)
    assert record.status == "COMPLETED", record.message
    assert {"val_nll", "test_nll", "nll", "param_count"} <= set(record.metrics)
    assert record.values["cell"] == "cifg" and 0.0 <= record.values["input_noise"] <= 0.5


def test_bad_jsb_files_are_named(tmp_path):
    no_valid = tmp_path / "train_only.json"
    no_valid.write_text(json.dumps({"train": _chorales(2, 0)}))
    with pytest.raises(ValueError, match="no 'valid' split"):
        jsb_data(JSBConfig(data=str(no_valid)))
    bad_pitch = tmp_path / "bad.json"
    bad_pitch.write_text(json.dumps({"train": [[[200]]], "valid": [[[60]]]}))
    with pytest.raises(DataFormatError, match="pitch 200"):
        jsb_data(JSBConfig(data=str(bad_pitch)))


@pytest.mark.parametrize("task", ["copy", "sign_memory", "adding"])
def test_chance_level_is_the_loss_of_the_best_predictor_blind_to_the_inputs(task, tmp_path):
    # The input-blind predictor knows each step's (or the sum's) distribution over the
    # validation set and nothing else; its loss is what the plots draw as chance.
    from tuning.adapters import make_adapter

    adapter = make_adapter(task, {"length": 12, "valid_examples": 4000}, tmp_path)
    targets = np.concatenate([np.asarray(y) for _, y in adapter.prepared.validation])
    if task == "adding":  # squared error of always answering the mean sum, 1.0
        blind = np.mean((targets - 1.0) ** 2)
    else:  # cross-entropy of each position's empirical distribution of targets
        columns = targets.reshape(len(targets), -1).T
        blind = np.mean([
            -np.mean(np.log(np.unique(column, return_counts=True)[1][
                np.searchsorted(np.unique(column), column)] / len(column)))
            for column in columns
        ])
    assert blind == pytest.approx(adapter.chance_level(adapter.config), rel=0.03)
