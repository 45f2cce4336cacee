"""Adding-problem data from the procedural source of pipelines/."""

from __future__ import annotations

import tensorflow as tf

from apps.adding.config import AddingConfig
from pipelines.procedural import adding_problem


def train_dataset(config: AddingConfig) -> tf.data.Dataset:
    dataset = adding_problem(config.train_examples, config.length, seed=config.seed)
    return (  # the examples are already in memory: no cache needed
        dataset.shuffle(10_000, seed=config.seed)
        .repeat()
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def test_dataset(config: AddingConfig) -> tf.data.Dataset:
    # A different seed: test sequences are never training sequences.
    dataset = adding_problem(config.test_examples, config.length, seed=config.seed + 1_000_003)
    return dataset.batch(500).cache().prefetch(tf.data.AUTOTUNE)
