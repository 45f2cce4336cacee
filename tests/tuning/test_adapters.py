"""App adapters: the apps' own configs and model builders under the tuner."""

from __future__ import annotations

import json
import random

import keras
import pytest

from tuning.__main__ import main
from tuning.adapters import ADAPTERS, get_adapter
from tuning.report import load_trials

VALUES = {
    "cell": "cifg",
    "units": 48,
    "learning_rate": 0.005,
    "optimizer": "rmsprop",
    "clip_norm": 2.0,
    "dropout": 0.1,
}


def test_every_adapter_writes_trial_values_into_its_app_config(tmp_path):
    assert sorted(ADAPTERS) == ["adding", "language_model", "sentiment", "tagging", "translation"]
    for app in ADAPTERS:
        adapter = get_adapter(app, {}, tmp_path / app)
        config = adapter.configure(VALUES)
        assert (
            config.learning_rate == 0.005
            and config.optimizer == "rmsprop"
            and config.clip_norm == 2.0
        )
        if app == "translation":
            assert (config.encoder_cell, config.decoder_cell) == ("cifg", "cifg")
            assert (config.encoder_units, config.decoder_units) == (48, 96)
        else:
            assert (config.cell, config.units) == ("cifg", 48)
        if hasattr(config, "dropout"):
            assert config.dropout == 0.1
        assert adapter.config.learning_rate != 0.005  # the base config is left alone
    assert get_adapter("tagging", {"task": "pos"}, tmp_path / "pos").objective == "val_accuracy"
    assert get_adapter("tagging", {"task": "ner"}, tmp_path / "ner").objective == "val_f1"


def test_app_search_uses_the_apps_model_builder(tmp_path):
    from apps.adding.config import AddingConfig
    from apps.adding.model import build_model

    run_dir = tmp_path / "adding"
    overrides = [
        "--set",
        "length=8",
        "--set",
        "train_examples=64",
        "--set",
        "test_examples=32",
        "--set",
        "batch_size=32",
        "--set",
        "steps_per_epoch=2",
    ]
    main(
        [
            "search",
            "--app",
            "adding",
            "--run-dir",
            str(run_dir),
            "--epochs",
            "1",
            "--max-trials",
            "2",
            "--cells",
            "lstm,rnn",
            "--units",
            "4,8",
            *overrides,
        ]
    )
    records = load_trials(run_dir)
    assert [r.status for r in records] == ["COMPLETED", "COMPLETED"], [r.message for r in records]
    for record in records:
        config = AddingConfig(length=8, cell=record.values["cell"], units=record.values["units"])
        assert record.metrics["param_count"] == build_model(config).count_params()
        assert (
            "val_loss" in record.metrics and "dropout" not in record.values
        )  # AddingConfig has none
    saved = json.loads((run_dir / "search.json").read_text())
    assert saved["app"] == "adding" and saved["app_config"]["length"] == 8
    assert saved["objective"] == "val_loss" and saved["direction"] == "min"


def test_unknown_app_and_unknown_config_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="available: adding"):
        main(["search", "--app", "nope", "--run-dir", str(tmp_path / "a")])
    with pytest.raises(ValueError, match="unknown config keys"):
        main(["search", "--app", "adding", "--run-dir", str(tmp_path / "b"), "--set", "colour=red"])


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
        "eval_batch_size": 2,
        "eval_bptt": 8,
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
        "bleu_every_epochs": 0,
    }


MAKERS = {
    "sentiment": _sentiment,
    "tagging": _tagging,
    "language_model": _language_model,
    "translation": _translation,
}


@pytest.mark.parametrize("app", sorted(MAKERS))
def test_each_adapter_prepares_the_app_data_and_builds_its_model(app, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    adapter = get_adapter(app, MAKERS[app](data), tmp_path / "work")
    model = adapter.build_model({**VALUES, "units": 6})
    batch = next(iter(adapter.prepared.data.train))
    outputs = model(batch[0], training=False)  # the app's model takes the app's batches
    assert model.optimizer is not None and keras.tree.flatten(outputs)[0].shape[0] is not None
    assert model.count_params() > 0 and any((tmp_path / "work" / "vocab").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("app", ["translation"])  # its in-graph SentencePiece must survive trials
def test_a_trial_of_an_app_completes(app, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    overrides = MAKERS[app](data)
    config_file = tmp_path / "app.json"
    config_file.write_text(json.dumps({**overrides, "verbose": 0}))
    run_dir = tmp_path / "run"
    main(
        [
            "search",
            "--app",
            app,
            "--run-dir",
            str(run_dir),
            "--app-config",
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
    assert ADAPTERS[app].objective in record.metrics and record.metrics["param_count"] > 0
    assert record.values["cell"] in ADAPTERS[app].default_space["cells"]
