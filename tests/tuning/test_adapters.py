"""Adapters: the apps' own configs, data and model builders under the tuner, in one
protocol with the built-in tasks."""

from __future__ import annotations

import json
import random

import keras
import pytest

from tuning.__main__ import main
from tuning.adapters import ADAPTERS, adapter_class, make_adapter
from tuning.report import load_trials

VALUES = {
    "cell": "cifg",
    "units": 48,
    "learning_rate": 0.005,
    "optimizer": "sgd",
    "momentum": 0.8,
    "clip_norm": 2.0,
    "dropout": 0.1,
    "input_noise": 0.2,
}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_every_adapter_writes_trial_values_into_its_config(name, tmp_path):
    cls = adapter_class(name)
    overrides = {"data": "unused.json"} if name == "jsb" else {}
    adapter = make_adapter(name, overrides, tmp_path / name)
    config = adapter.configure(VALUES)
    assert (config.learning_rate, config.optimizer, config.momentum, config.clip_norm) == (
        0.005, "sgd", 0.8, 2.0)
    if name == "translation":
        assert (config.encoder_cell, config.decoder_cell) == ("cifg", "cifg")
        assert (config.encoder_units, config.decoder_units) == (48, 96)
    else:
        assert (config.cell, config.units) == ("cifg", 48)
    for value in ("dropout", "input_noise"):  # only where the task tunes it
        if value in cls.hyperparameters:
            assert getattr(config, value) == VALUES[value]
        elif hasattr(config, value):
            assert getattr(config, value) == getattr(adapter.config, value)
    assert adapter.config.learning_rate != 0.005  # the base config is left alone
    # the options the search lists are the task's own, never one the trials set
    listed = set(cls.option_names())
    assert not listed & {"cell", "units", "learning_rate", "optimizer", "epochs", "seed"}


def test_tagging_objective_follows_its_task(tmp_path):
    assert make_adapter("tagging", {"task": "pos"}, tmp_path / "pos").objective == "val_accuracy"
    assert make_adapter("tagging", {"task": "ner"}, tmp_path / "ner").objective == "val_f1"


def test_app_search_uses_the_apps_model_builder(tmp_path):
    from apps.adding.config import AddingConfig
    from apps.adding.model import build_model

    run_dir = tmp_path / "adding"
    main(["search", "adding", "--run-dir", str(run_dir), "--epochs", "2", "--max-trials", "2",
          "--cells", "lstm,rnn", "--units", "4,8", "--length", "8", "--train-examples", "64",
          "--test-examples", "32", "--batch-size", "32", "--steps-per-epoch", "2",
          "--learning-rate", "0.01", "--lr-schedule", "inverse_time",
          "--lr-inverse-time-decay", "1.0"])
    records = load_trials(run_dir)
    assert [r.status for r in records] == ["COMPLETED", "COMPLETED"], [r.message for r in records]
    for record in records:
        config = AddingConfig(length=8, cell=record.values["cell"], units=record.values["units"])
        assert record.metrics["param_count"] == build_model(config).count_params()
        assert "val_mse" in record.metrics and "dropout" not in record.values  # AddingConfig has none
        # the app's --lr-schedule runs in trials: epoch e trains at 0.01 / (1 + e)
        epoch = record.metrics["best_epoch"] - 1
        assert record.metrics["learning_rate"] == pytest.approx(0.01 / (1 + epoch))
    saved = json.loads((run_dir / "search.json").read_text())
    assert saved["task"] == "adding" and saved["task_config"]["length"] == 8
    assert saved["objective"] == "val_mse" and saved["direction"] == "min"


def test_unknown_and_search_owned_config_keys_are_refused(tmp_path):
    config_file = tmp_path / "adding.json"
    config_file.write_text(json.dumps({"colour": "red"}))
    with pytest.raises(ValueError, match="unknown config keys"):
        main(["search", "adding", "--run-dir", str(tmp_path / "a"), "--config", str(config_file)])
    config_file.write_text(json.dumps({"units": 8, "length": 8}))
    with pytest.raises(ValueError, match="--units cannot be given to a search"):
        main(["search", "adding", "--run-dir", str(tmp_path / "b"), "--config", str(config_file)])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --------------------------------------------------------------------------------------
# One trial of every other app on tiny local data


def _sentiment(folder):
    rng = random.Random(0)
    good, bad = ["great", "fine", "lovely", "superb"], ["awful", "dull", "poor", "bad"]
    lines = []
    for index in range(48):
        label = index % 2
        words = [rng.choice(good if label else bad) for _ in range(rng.randint(3, 8))]
        lines.append(json.dumps({"text": "the film was " + " ".join(words), "label": label}))
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    return {
        "data_dir": str(folder),
        "vocab_size": 20,
        "min_frequency": 1,
        "batch_type": "examples",
        "batch_size": 8,
        "embedding_size": 8,
        "valid_fraction": 0.25,
        "max_length": 16,
    }


def _tagging(folder):
    rng = random.Random(1)
    names, places = ["Alice", "Bob", "Carol"], ["Paris", "Rome", "Oslo"]

    def sentences(count):
        lines = ["-DOCSTART- -X- O O", ""]
        for _ in range(count):
            lines += [
                f"{rng.choice(names)} NNP I-NP I-PER",
                "went VBD I-VP O",
                "to TO I-PP O",
                f"{rng.choice(places)} NNP I-NP I-LOC",
                ". . O O",
                "",
            ]
        return "\n".join(lines) + "\n"

    (folder / "train.txt").write_text(sentences(24))
    (folder / "dev.txt").write_text(sentences(6))
    return {
        "train_file": str(folder / "train.txt"),
        "dev_file": str(folder / "dev.txt"),
        "char_units": 4,
        "char_embedding_size": 4,
        "word_embedding_size": 8,
        "batch_size": 8,
    }


def _language_model(folder):
    (folder / "text.txt").write_text("the cat sat on the mat and the dog sat on the log. " * 30)
    return {
        "text_file": str(folder / "text.txt"),
        "tokenizer": "char",
        "bptt": 8,
        "batch_size": 4,
        "num_layers": 1,
        "steps_per_epoch": 4,
    }


def _translation(folder):
    rng = random.Random(2)
    lexicon = {"red": "rot", "cat": "katze", "house": "haus", "big": "gross", "dog": "hund"}

    def write(name, count):
        sources, targets = [], []
        for _ in range(count):
            words = [rng.choice(list(lexicon)) for _ in range(rng.randint(2, 5))]
            sources.append(" ".join(words))
            targets.append(" ".join(lexicon[w] for w in reversed(words)))
        (folder / f"{name}.en").write_text("\n".join(sources) + "\n")
        (folder / f"{name}.de").write_text("\n".join(targets) + "\n")

    write("train", 200)
    write("valid", 20)
    return {
        "train_source": str(folder / "train.en"),
        "train_target": str(folder / "train.de"),
        "valid_source": str(folder / "valid.en"),
        "valid_target": str(folder / "valid.de"),
        "vocab_size": 30,
        "embedding_size": 8,
        "attention_units": 8,
        "batch_size": 200,
    }


def _procedural(folder):
    return {"length": 5, "train_examples": 16, "valid_examples": 8, "test_examples": 8}


MAKERS = {
    "copy": _procedural,
    "sign_memory": _procedural,
    "sentiment": _sentiment,
    "tagging": _tagging,
    "language_model": _language_model,
    "translation": _translation,
}


@pytest.mark.parametrize("app", sorted(MAKERS))
def test_each_task_prepares_its_data_and_builds_its_model(app, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    adapter = make_adapter(app, MAKERS[app](data), tmp_path / "work")
    model = adapter.build_model({**VALUES, "units": 6, "optimizer": "rmsprop"})
    batch = next(iter(adapter.prepared.train))
    outputs = model(batch[0], training=False)  # the task's model takes the task's batches
    assert model.optimizer is not None and keras.tree.flatten(outputs)[0].shape[0] is not None
    assert model.count_params() > 0
    if app.startswith(("sentiment", "tagging", "language", "translation")):  # vocabularies
        assert any((tmp_path / "work" / "vocab").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("app", ["translation"])  # its in-graph SentencePiece must survive trials
def test_a_trial_of_an_app_completes(app, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    overrides = MAKERS[app](data)
    config_file = tmp_path / "app.json"
    config_file.write_text(json.dumps(overrides))
    run_dir = tmp_path / "run"
    main(
        [
            "search",
            app,
            "--run-dir",
            str(run_dir),
            "--config",
            str(config_file),
            "--epochs",
            "1",
            "--max-trials",
            "1",
            "--units",
            "4,8",
        ]
    )
    (record,) = load_trials(run_dir)
    assert record.status == "COMPLETED", record.message
    cls = adapter_class(app)
    assert cls.objective in record.metrics and record.metrics["param_count"] > 0
    assert record.values["cell"] in cls.default_space["cells"]
