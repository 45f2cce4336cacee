"""Adding-problem data from the procedural source of pipelines/: train, valid and test
sequences drawn with different seeds (no sequence is in two splits)."""

from __future__ import annotations

import tensorflow as tf

from apps.adding.config import AddingConfig
from pipelines.batching import reshuffled_passes
from pipelines.procedural import adding_problem

#: Added to --seed for the held-out splits.
SPLIT_SEED_OFFSETS = {"valid": 1_000_003, "test": 2_000_003}


def train_dataset(config: AddingConfig) -> tf.data.Dataset:
    """The training sequences repeated, each pass reshuffled, in batches: the same stream in
    every iterator and process (a resumed run skips the batches it has trained on)."""
    dataset = adding_problem(config.train_examples, config.length, seed=config.seed)
    return (  # the examples are already in memory: no cache needed
        reshuffled_passes(dataset, 10_000, seed=config.seed)
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def heldout_dataset(config: AddingConfig, split: str) -> tf.data.Dataset:
    """The `valid` or `test` sequences, in batches of 500."""
    count = config.valid_examples if split == "valid" else config.test_examples
    dataset = adding_problem(count, config.length, seed=config.seed + SPLIT_SEED_OFFSETS[split])
    return dataset.batch(500).cache().prefetch(tf.data.AUTOTUNE)
