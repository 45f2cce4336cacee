"""apps/tagging/data: word dropout, uniform and for rare words (alpha / (alpha + count)):
the probabilities counted by hand, the empirical rates of the training pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from apps.common.config import check_config
from apps.tagging.config import TaggingConfig
from apps.tagging.data import (
    Featurizer,
    Vocabularies,
    make_dataset,
    word_dropout,
    word_dropout_probabilities,
)

SENTENCES = [["The", "cat", "sat"], ["the", "dog"], ["The", "cat", "ran", "Zed"]]
# As the lookup sees them (lower-cased): the x3, cat x2, sat, dog, ran x1; "zed" is not in
# the vocabulary (the unknown word).
VOCABULARY = Vocabularies(words=["the", "cat", "dog", "ran", "sat"], chars=list("Tacdeghnorstz"), tags=["X"])
IDS = {"the": 2, "cat": 3, "dog": 4, "ran": 5, "sat": 6}


def probabilities(**options) -> np.ndarray:
    config = TaggingConfig(task="pos", **options)
    return word_dropout_probabilities(SENTENCES, Featurizer(VOCABULARY, config), config)


def test_probabilities_counted_by_hand():
    counts = {"the": 3, "cat": 2, "dog": 1, "ran": 1, "sat": 1}
    rare = probabilities(word_dropout=0.0, rare_word_dropout=1.0)
    assert rare[:2].tolist() == [0.0, 0.0]  # padding and the unknown word are never replaced
    for word, count in counts.items():
        assert rare[IDS[word]] == pytest.approx(1 / (1 + count))  # singletons: 1/2 (Lample et al.)
    both = probabilities(word_dropout=0.1, rare_word_dropout=0.25)
    for word, count in counts.items():
        assert both[IDS[word]] == pytest.approx(1 - 0.9 * (1 - 0.25 / (0.25 + count)))
    assert probabilities(word_dropout=0.05).tolist() == pytest.approx([0, 0] + [0.05] * 5)


def test_empirical_replacement_rates_match_the_probabilities():
    table = tf.constant([0.0, 0.0, 0.1, 0.5, 0.9], tf.float32)
    ids = tf.constant(np.tile(np.arange(5, dtype=np.int32), (4000, 1)))
    tf.random.set_seed(0)
    dropped = word_dropout({"word_ids": ids}, table)["word_ids"].numpy()
    replaced = (dropped != ids.numpy()).mean(axis=0)
    assert replaced[:2].tolist() == [0.0, 0.0]
    assert np.all(dropped[dropped != ids.numpy()] == 1)  # replaced by the unknown word
    # 4,000 draws each: the standard error is at most 0.008.
    assert replaced[2:] == pytest.approx([0.1, 0.5, 0.9], abs=0.04)


def test_training_batches_replace_rare_words_and_keep_evaluation_batches():
    config = TaggingConfig(task="pos", word_dropout=0.0, rare_word_dropout=1e9, batch_size=8)
    featurizer = Featurizer(VOCABULARY, config)
    tags = [np.zeros(len(sentence), np.int32) for sentence in SENTENCES]
    training = make_dataset(SENTENCES, tags, featurizer, config, training=True)
    words = np.concatenate([x["word_ids"].numpy().ravel() for x, _ in training])
    assert set(words.tolist()) <= {0, 1}  # alpha >> count: every word is replaced
    evaluation = make_dataset(SENTENCES, None, featurizer, config, training=False)
    words = np.concatenate([x["word_ids"].numpy().ravel() for x in evaluation])
    assert {2, 3, 4, 5, 6} <= set(words.tolist())
    with pytest.raises(ValueError, match="--rare-word-dropout must be >= 0"):
        check_config(TaggingConfig(rare_word_dropout=-1.0))
