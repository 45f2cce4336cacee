"""The apps as tuning tasks: each adapter makes the app's config, prepares the app's data
with the app's own readers and builds the model with the app's own builder, all through
the app's public modules (config, data, model, and tagging's scoring). Nothing of an
app is copied here; apps are imported when their adapter is used.
"""

from __future__ import annotations

from tuning.adapters import WITH_DROPOUT, Adapter, Prepared


class Adding(Adapter):
    """apps/adding: the adding problem (Hochreiter & Schmidhuber 1997)."""

    name = "adding"
    description = "apps/adding: the adding problem, held-out mean squared error"
    metric_label = "MSE"
    ignored_options = ("stop_mse", "demo_cells")
    default_space = {
        "cells": ["vanilla", "lstm", "gru", "rnn"],
        "units": [16, 128],
        "learning_rate": [1e-4, 3e-2],
        "clip_norms": [1.0],
    }

    @staticmethod
    def config_class():
        from apps.adding.config import AddingConfig

        return AddingConfig

    @classmethod
    def chance_level(cls, config) -> float:
        """Always answering 1.0: the variance of U(0,1) + U(0,1)."""
        return 1.0 / 6.0

    def prepare(self):
        from apps.adding.data import heldout_dataset, train_dataset

        config = self.config
        return Prepared(
            train=train_dataset(config),  # repeated: an epoch is --steps-per-epoch batches
            validation=heldout_dataset(config, "valid"),
            test=heldout_dataset(config, "test"),
            steps_per_epoch=config.steps_per_epoch or config.train_examples // config.batch_size,
        )

    def build(self, config, prepared):
        from apps.adding.model import build_model

        return build_model(config)


class Sentiment(Adapter):
    """apps/sentiment: IMDB (TFDS or local files), or any set of labelled texts."""

    name = "sentiment"
    description = "apps/sentiment: validation accuracy"
    metric_label = "accuracy"
    direction = "max"
    hyperparameters = WITH_DROPOUT
    ignored_options = ("pretrain_epochs", "pretrain_learning_rate", "pretrain_sampled",
                       "test_file", "max_test_examples")
    clear_session = False
    default_space = {
        "cells": ["lstm", "gru", "cifg", "nfg", "rnn"],
        "units": [32, 256],
        "learning_rate": [3e-4, 1e-2],
        "dropout": [0.0, 0.4],
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
            raise ValueError("tuning sentiment needs a validation split: --valid-fraction 0.1")
        data.build_vocabulary(config, train_texts, self.vocab_dir)
        encoder = data.TextEncoder(config, self.vocab_dir)
        return Prepared(
            train=data.make_dataset(train_texts, train_labels, encoder, config, training=True),
            validation=data.make_dataset(val_texts, val_labels, encoder, config, training=False),
            steps_per_epoch=config.steps_per_epoch or None,
            context=encoder.vocabulary_size,
        )

    def build(self, config, prepared):
        from apps.sentiment.model import build_compiled_model

        return build_compiled_model(config, prepared.context)


class Translation(Adapter):
    """apps/translation: attention seq2seq; `cell` sets encoder and decoder cells, `units`
    the encoder width per direction (the decoder gets twice as many)."""

    name = "translation"
    description = "apps/translation: validation label-smoothed cross-entropy"
    objective = "val_loss"
    metric_label = "cross-entropy"
    hyperparameters = WITH_DROPOUT
    ignored_options = ("init_from_run", "bleu_every_epochs", "bleu_max_sentences",
                       "test_source", "test_target", "tfds_test_split")
    clear_session = False
    default_space = {
        "cells": ["lstm", "gru", "cifg", "nfg"],
        "units": [64, 256],
        "learning_rate": [3e-4, 3e-3],
        "dropout": [0.0, 0.4],
        "clip_norms": [1.0],
    }

    @staticmethod
    def config_class():
        from apps.translation.config import TranslationConfig

        return TranslationConfig

    @classmethod
    def tuned_fields(cls):
        return {
            **super().tuned_fields(),
            "cell": ("encoder_cell", "decoder_cell"),
            "units": ("encoder_units", "decoder_units"),
        }

    def configure(self, values):
        config = super().configure(values)
        if "units" in values:  # the decoder reads both directions of the encoder
            config.decoder_units = 2 * values["units"]
        return config

    def prepare(self):
        from apps.translation import data

        config = self.config
        train_sources, train_targets = data.read_split_examples(config, "train")
        valid_sources, valid_targets = data.read_split_examples(config, "valid")
        if not valid_sources:
            raise ValueError("tuning translation needs a validation split (valid files)")
        vocabularies = data.build_vocabularies(config, train_sources, train_targets, self.vocab_dir)

        def batches(sources, targets, training):
            pairs = data.tokenize_pairs(sources, targets, vocabularies)
            return data.make_batches(pairs, config, training)

        return Prepared(
            train=batches(train_sources, train_targets, True),
            validation=batches(valid_sources, valid_targets, False),
            steps_per_epoch=config.steps_per_epoch or None,
            context=vocabularies,
        )

    def build(self, config, prepared):
        from apps.translation.model import build_model

        vocabularies = prepared.context
        return build_model(config, vocabularies.source_size, vocabularies.target_size)


class Tagging(Adapter):
    """apps/tagging: POS / chunking / NER taggers (BiLSTM(-CRF) with character features),
    scored on dev each epoch by the app's `ScoreCallback` (F1 of entities, or accuracy)."""

    name = "tagging"
    description = "apps/tagging: dev score of the tagger"
    metric_label = "dev score"
    direction = "max"
    hyperparameters = WITH_DROPOUT
    inference_options = ("decoding", "eval_batch_size")
    ignored_options = ("test_file",)
    clear_session = False
    default_space = {
        "cells": ["lstm", "gru", "cifg", "nfg"],
        "units": [32, 200],
        "learning_rate": [3e-4, 1e-2],
        "dropout": [0.0, 0.5],
        "clip_norms": [5.0],
    }

    @staticmethod
    def config_class():
        from apps.tagging.config import TaggingConfig

        return TaggingConfig

    def prepare(self):
        from apps.tagging import data
        from apps.tagging.scoring import ScoreCallback, Scorer

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
        return Prepared(
            train=batches(train, "train", True),
            validation=batches(dev, "dev", False),
            steps_per_epoch=config.steps_per_epoch or None,
            context=vocabularies,
            callbacks=lambda: [ScoreCallback(scorer)],
        )

    def build(self, config, prepared):
        from apps.tagging.model import build_model

        return build_model(config, prepared.context)


class LanguageModel(Adapter):
    """apps/language_model: char/word/SentencePiece RNN language models (stateful truncated
    BPTT or independent windows)."""

    name = "language_model"
    description = "apps/language_model: validation cross-entropy (nats per token)"
    metric_label = "cross-entropy"
    hyperparameters = WITH_DROPOUT
    ignored_options = ("test_file",)
    clear_session = False
    default_space = {
        "cells": ["lstm", "gru", "cifg", "nfg", "noaf"],
        "units": [64, 512],
        "learning_rate": [3e-4, 1e-2],
        "dropout": [0.0, 0.5],
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
        return Prepared(
            train=train,
            validation=data.validation_windows(config, splits.ids["valid"]),
            steps_per_epoch=config.steps_per_epoch or windows_per_pass,
            context=tokenizer.vocab_size,
            callbacks=lambda: [
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
