"""App adapters: tune an app with the model builder and data pipeline of the app itself.

An adapter says, for one app, how to make its config (`config_class`, overridden by
`--app-config FILE` / `--set KEY=VALUE`), how to prepare its data once (`prepare`: the
app's own readers, vocabularies written under the search directory), how to turn a
trial's values into config fields (`configure`), and how to build the compiled model
(`build`: the app's own builder). Nothing of an app is copied here.

    python -m tuning search --app sentiment --run-dir runs/tune_sentiment \
        --set data_dir=/data/imdb --set epochs=2 --cells lstm,gru,cifg --max-trials 12

Adding an adapter for a new app: subclass `AppAdapter`, fill the class attributes and
`prepare`/`build`, and register it in `ADAPTERS`. This is the only module of `tuning/`
that imports `apps/`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from tuning.tasks import TaskData

#: The hyperparameters of `tuning.space` every app takes; most apps take `dropout` too.
TRAINING_HYPERPARAMETERS = ("cell", "units", "learning_rate", "optimizer", "clip_norm")
WITH_DROPOUT = (*TRAINING_HYPERPARAMETERS, "dropout")

#: Trial values -> config fields, used by `AppAdapter.configure` when the field exists.
DEFAULT_FIELDS = {
    "cell": "cell",
    "units": "units",
    "learning_rate": "learning_rate",
    "optimizer": "optimizer",
    "clip_norm": "clip_norm",
    "dropout": "dropout",
}


@dataclasses.dataclass
class PreparedApp:
    """What `prepare` returns: the datasets and whatever the builder needs (vocabulary
    sizes...), plus a factory of app callbacks added to every trial's fit."""

    data: TaskData
    context: Any = None
    make_callbacks: Callable[[], list] = lambda: []


class AppAdapter:
    """How the tuner trains one app. Subclasses set the class attributes and implement
    `config_class`, `prepare` and `build`."""

    app = ""
    description = ""  # report title
    objective = "val_loss"  # a key of the Keras logs
    metric_label = "loss"  # how report tables call the objective
    direction = "min"
    chance_level: float | None = None  # the objective of a model ignoring its inputs
    #: Hyperparameters of `tuning.space` this app can take (others are not declared).
    hyperparameters: tuple[str, ...] = TRAINING_HYPERPARAMETERS
    #: Defaults of `tuning.space.SearchSpace` for this app (the command line overrides).
    default_space: dict = {}

    def __init__(self, overrides: dict | None = None, work_dir: str | Path = "tuning_app"):
        self.work_dir = Path(work_dir)
        self.config = self.make_config(dict(overrides or {}))

    @staticmethod
    def config_class() -> type:
        raise NotImplementedError

    def make_config(self, overrides: dict):
        from apps.common.config import config_from_dict

        config = config_from_dict(self.config_class(), overrides, source="--app-config/--set")
        config.run_dir = str(self.work_dir)
        if hasattr(config, "validate"):
            config.validate()
        return config

    def configure(self, values: dict):
        """The app config of one trial: `values` written into the matching fields."""
        changes = {
            field: values[name]
            for name, field in DEFAULT_FIELDS.items()
            if name in values and hasattr(self.config, field)
        }
        return dataclasses.replace(self.config, **changes)

    @functools.cached_property
    def prepared(self) -> PreparedApp:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.prepare()

    def prepare(self) -> PreparedApp:
        raise NotImplementedError

    def build(self, config, prepared: PreparedApp) -> keras.Model:
        raise NotImplementedError

    def build_model(self, values: dict) -> keras.Model:
        return self.build(self.configure(values), self.prepared)

    @property
    def vocab_dir(self) -> Path:
        path = self.work_dir / "vocab"
        path.mkdir(parents=True, exist_ok=True)
        return path


class AddingAdapter(AppAdapter):
    """apps/adding: the adding problem; objective: validation MSE."""

    app = "adding"
    description = "apps/adding: the adding problem, held-out mean squared error"
    objective = "val_loss"
    metric_label = "MSE"
    chance_level = 1.0 / 6.0  # always answering 1.0
    default_space = {
        "cells": ["vanilla", "lstm", "gru", "rnn"],
        "units": (16, 128),
        "learning_rate": (1e-4, 3e-2),
        "clip_norms": [1.0],
    }

    @staticmethod
    def config_class():
        from apps.adding.config import AddingConfig

        return AddingConfig

    def prepare(self):
        from apps.adding.data import heldout_dataset, train_dataset

        config = self.config
        return PreparedApp(
            TaskData(
                train=train_dataset(config),
                validation=heldout_dataset(config, "valid"),
                test=heldout_dataset(config, "test"),
                steps_per_epoch=config.steps_per_epoch or 100,
            )
        )

    def build(self, config, prepared):
        from apps.adding.model import build_model

        return build_model(config)


class SentimentAdapter(AppAdapter):
    """apps/sentiment: IMDB (TFDS or local files); objective: validation accuracy."""

    app = "sentiment"
    description = "apps/sentiment: validation accuracy"
    objective = "val_accuracy"
    metric_label = "accuracy"
    direction = "max"
    hyperparameters = WITH_DROPOUT
    default_space = {
        "cells": ["lstm", "gru", "cifg", "nfg", "rnn"],
        "units": (32, 256),
        "learning_rate": (3e-4, 1e-2),
        "dropout": (0.0, 0.4),
        "clip_norms": [1.0],
    }

    @staticmethod
    def config_class():
        from apps.sentiment.config import SentimentConfig

        return SentimentConfig

    def prepare(self):
        from apps.sentiment import data

        config = self.config
        texts, labels = data.load_split(config, "train")
        (train_texts, train_labels), (val_texts, val_labels) = data.train_validation_split(
            texts, labels, config.valid_fraction, config.seed
        )
        if not len(val_texts):
            raise ValueError(
                "tuning sentiment needs a validation split: --set valid_fraction=0.1"
            )
        data.build_vocabulary(config, train_texts, self.vocab_dir)
        encoder = data.TextEncoder(config, self.vocab_dir)
        return PreparedApp(
            TaskData(
                train=data.make_dataset(train_texts, train_labels, encoder, config, training=True),
                validation=data.make_dataset(
                    val_texts, val_labels, encoder, config, training=False
                ),
                steps_per_epoch=config.steps_per_epoch or None,
            ),
            context=encoder.vocabulary_size,
        )

    def build(self, config, prepared):
        from apps.sentiment.model import build_compiled_model

        return build_compiled_model(config, prepared.context)


class TranslationAdapter(AppAdapter):
    """apps/translation: attention seq2seq; `cell` sets encoder and decoder cells, `units`
    the encoder width per direction (the decoder gets twice as many); objective:
    validation loss (label-smoothed cross-entropy)."""

    app = "translation"
    description = "apps/translation: validation label-smoothed cross-entropy"
    objective = "val_loss"
    metric_label = "cross-entropy"
    hyperparameters = WITH_DROPOUT
    default_space = {
        "cells": ["lstm", "gru", "cifg", "nfg"],
        "units": (64, 256),
        "learning_rate": (3e-4, 3e-3),
        "dropout": (0.0, 0.4),
        "clip_norms": [1.0],
    }

    @staticmethod
    def config_class():
        from apps.translation.config import TranslationConfig

        return TranslationConfig

    def configure(self, values):
        config = super().configure(values)
        changes = {}
        if "cell" in values:
            changes.update(encoder_cell=values["cell"], decoder_cell=values["cell"])
        if "units" in values:
            changes.update(encoder_units=values["units"], decoder_units=2 * values["units"])
        return dataclasses.replace(config, **changes)

    def prepare(self):
        from apps.translation import data

        config = self.config
        train_sources, train_targets = data.read_split_examples(config, "train")
        valid_sources, valid_targets = data.read_split_examples(config, "valid")
        if not valid_sources:
            raise ValueError("tuning translation needs a validation split (valid files)")
        vocabularies = data.build_vocabularies(config, train_sources, train_targets, self.vocab_dir)
        return PreparedApp(
            TaskData(
                train=data.make_batches(
                    data.tokenize_pairs(train_sources, train_targets, vocabularies), config, True
                ),
                validation=data.make_batches(
                    data.tokenize_pairs(valid_sources, valid_targets, vocabularies), config, False
                ),
                steps_per_epoch=config.steps_per_epoch or None,
            ),
            context=vocabularies,
        )

    def build(self, config, prepared):
        from apps.translation.model import build_model

        vocabularies = prepared.context
        return build_model(config, vocabularies.source_size, vocabularies.target_size)


class TaggingAdapter(AppAdapter):
    """apps/tagging: POS / chunking / NER taggers (BiLSTM(-CRF) with character features);
    objective: the app's own dev score (`val_f1` for entity tasks, `val_accuracy` for POS),
    computed each epoch by the app's `ScoreCallback`."""

    app = "tagging"
    description = "apps/tagging: dev score of the tagger"
    objective = "val_f1"
    metric_label = "dev score"
    direction = "max"
    hyperparameters = WITH_DROPOUT
    default_space = {
        "cells": ["lstm", "gru", "cifg", "nfg"],
        "units": (32, 200),
        "learning_rate": (3e-4, 1e-2),
        "dropout": (0.0, 0.5),
        "clip_norms": [5.0],
    }

    def __init__(self, overrides=None, work_dir="tuning_app"):
        super().__init__(overrides, work_dir)
        self.objective = self.config.monitor  # set by the config from the task
        self.metric_label = self.objective.removeprefix("val_")

    @staticmethod
    def config_class():
        from apps.tagging.config import TaggingConfig

        return TaggingConfig

    def prepare(self):
        from apps.tagging import data
        from apps.tagging.tasks import ScoreCallback, Scorer

        config = self.config
        splits = data.load_splits(config)
        train, dev = splits["train"], splits["dev"]
        try:
            vocabularies = data.Vocabularies.load(self.vocab_dir)
        except FileNotFoundError:
            vocabularies = data.build_vocabularies(train, config)
            vocabularies.save(self.vocab_dir)
        featurizer = data.Featurizer(vocabularies, config)

        def batches(split, name, training):
            ids = data.tag_ids(data.training_tags(split, config), vocabularies.tags, name)
            return data.make_dataset(split.tokens, ids, featurizer, config, training)

        scorer = Scorer(dev, featurizer, vocabularies, config)
        return PreparedApp(
            TaskData(
                train=batches(train, "train", True),
                validation=batches(dev, "dev", False),
                steps_per_epoch=config.steps_per_epoch or None,
            ),
            context=vocabularies,
            make_callbacks=lambda: [ScoreCallback(scorer)],
        )

    def build(self, config, prepared):
        from apps.tagging.model import build_model

        return build_model(config, prepared.context)


class LanguageModelAdapter(AppAdapter):
    """apps/language_model: char/word/SentencePiece RNN language models (stateful truncated
    BPTT or independent windows); objective: validation cross-entropy (nats per token)."""

    app = "language_model"
    description = "apps/language_model: validation cross-entropy (nats per token)"
    objective = "val_cross_entropy"
    metric_label = "cross-entropy"
    hyperparameters = WITH_DROPOUT
    default_space = {
        "cells": ["lstm", "gru", "cifg", "nfg", "noaf"],
        "units": (64, 512),
        "learning_rate": (3e-4, 1e-2),
        "dropout": (0.0, 0.5),
        "clip_norms": [1.0],
    }

    @staticmethod
    def config_class():
        from apps.language_model.config import LanguageModelConfig

        return LanguageModelConfig

    def prepare(self):
        from apps.language_model import data
        from apps.language_model.callbacks import PerplexityLogs, StreamStates
        from apps.language_model.tokens import load_or_train

        config = self.config
        texts = data.load_texts(config)
        tokenizer = load_or_train(config, texts["train"], self.vocab_dir)
        splits = data.encode_splits(tokenizer, texts, config.max_train_tokens)
        train, windows_per_pass = data.training_windows(config, splits.ids["train"])
        stateful = config.training_mode == "stateful"
        return PreparedApp(
            TaskData(
                train=train,
                validation=data.validation_windows(config, splits.ids["valid"]),
                steps_per_epoch=config.steps_per_epoch or windows_per_pass,
            ),
            context=tokenizer.vocab_size,
            make_callbacks=lambda: [
                *([StreamStates(windows_per_pass)] if stateful else []),
                PerplexityLogs(),
            ],
        )

    def build(self, config, prepared):
        from apps.language_model.model import build_model, compile_model

        stateful = config.training_mode == "stateful"
        model = build_model(
            config, prepared.context, config.batch_size if stateful else None, stateful
        )
        return compile_model(model, config)


ADAPTERS: dict[str, type[AppAdapter]] = {
    adapter.app: adapter
    for adapter in (
        AddingAdapter,
        SentimentAdapter,
        TaggingAdapter,
        LanguageModelAdapter,
        TranslationAdapter,
    )
}


def get_adapter(app: str, overrides: dict, work_dir: str | Path) -> AppAdapter:
    if app not in ADAPTERS:
        raise ValueError(f"no adapter for app {app!r}; available: {', '.join(ADAPTERS)}")
    return ADAPTERS[app](overrides, work_dir)
