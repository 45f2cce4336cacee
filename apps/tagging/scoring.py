"""Scoring a tagger on a split the way the app reports it: the dev score of every epoch
(`ScoreCallback`, which adds val_f1 / val_accuracy to the epoch logs) and of a trained
model (`Scorer`), on the split's original tags and scheme."""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

from apps.tagging.config import TaggingConfig
from apps.tagging.data import Featurizer, Split, Vocabularies, make_dataset, training_tags
from apps.tagging.metrics import (
    TrainingText,
    entity_scores,
    format_entity_report,
    token_accuracy,
    unseen_entity_scores,
    unseen_token_accuracy,
)
from apps.tagging.model import predict_tag_ids

logger = logging.getLogger(__name__)


class Scorer:
    """Tags a split with a model and scores it against the split's original tags (also on
    what `training` never shows, when given)."""

    def __init__(
        self,
        split: Split,
        featurizer: Featurizer,
        vocabularies: Vocabularies,
        config: TaggingConfig,
        training: TrainingText | None = None,
    ):
        self.split = split
        self.config = config
        self.training = training
        self.tags = vocabularies.tags
        self.dataset = make_dataset(split.tokens, None, featurizer, config, training=False)
        self._predict = None
        self._model = None

    def predict(self, model: keras.Model) -> list[list[str]]:
        """Predicted tags (training scheme) of every sentence, in order."""
        if self._model is not model:
            self._model = model
            self._predict = tf.function(
                lambda features: predict_tag_ids(model, features, self.config.decoding), reduce_retracing=True
            )
        predicted: list[list[str]] = []
        lengths = iter([len(sentence) for sentence in self.split.tokens])
        for features in self.dataset:
            for row in self._predict(features).numpy():
                predicted.append([self.tags[i] for i in row[: next(lengths)]])
        return predicted

    def score(self, model: keras.Model) -> dict:
        """{"f1", "precision", "recall", "accuracy", ...} on the original tags."""
        return score_tags(self.split, self.predict(model), self.config, self.training)


def score_tags(
    split: Split, predicted: list[list[str]], config: TaggingConfig, training: TrainingText | None = None
) -> dict:
    """Scores predicted tags (training scheme) against the split's original tags: entity
    P/R/F1 on the original spans (entity tasks) and token accuracy; with `training`, the
    same restricted to unseen mentions and words (`unseen_*`, `metrics.TrainingText`)."""
    gold = training_tags(split, config)
    scores = {"accuracy": token_accuracy(gold, predicted)}
    if split.scheme is not None:
        scores = {**entity_scores(split.tags, split.scheme, predicted, config.tag_scheme), **scores}
    if training is not None:
        scores.update(unseen_token_accuracy(split.tokens, gold, predicted, training))
        if split.scheme is not None:
            scores.update(
                unseen_entity_scores(split.tokens, split.tags, split.scheme, predicted, config.tag_scheme, training)
            )
    return scores


def print_scores(scores: dict, split_name: str, config: TaggingConfig) -> None:
    """The entity table (entity tasks), then token accuracy, overall and on unseen words."""
    if config.entities:
        print(format_entity_report(scores))
    line = f"{split_name} token accuracy: {100 * scores['accuracy']:.2f}%"
    if "unseen_accuracy" in scores:
        line += f" ({100 * scores['unseen_accuracy']:.2f}% on the {scores['unseen_tokens']} tokens unseen in training)"
    print(line)


class ScoreCallback(keras.callbacks.Callback):
    """Adds the dev scores to the epoch logs as val_f1 / val_precision / val_recall /
    val_accuracy, so that checkpointing and early stopping can monitor them."""

    def __init__(self, scorer: Scorer):
        super().__init__()
        self.scorer = scorer

    def on_epoch_end(self, epoch, logs=None):
        scores = self.scorer.score(self.model)
        if logs is not None:
            for key in ("f1", "precision", "recall", "accuracy", "unseen_f1", "unseen_accuracy"):
                if key in scores:
                    logs[f"val_{key}"] = scores[key]
        summary = ", ".join(f"{k} {100 * v:.2f}" for k, v in scores.items() if isinstance(v, float))
        logger.info("epoch %d dev: %s", epoch + 1, summary)
