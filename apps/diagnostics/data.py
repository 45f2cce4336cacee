"""The studies' data, all procedural (`pipelines.procedural`): nothing to download.

Training examples are drawn with the run's seed, held-out ones with the seed plus
`HELDOUT_SEED_OFFSET`, so no example is in both. The language model's texts and the
translation pairs share a language seed (the lexicon, the word chain, the dictionary)
across splits and seeds: every run learns the same language.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from apps.diagnostics.config import DiagnosticsConfig
from pipelines import batching, procedural

HELDOUT_SEED_OFFSET = 1_000_003
#: Words of the toy translation language; ids 1..TRANSLATION_WORDS, then BOS and EOS.
TRANSLATION_WORDS = 40
BOS, EOS = TRANSLATION_WORDS + 1, TRANSLATION_WORDS + 2
TRANSLATION_VOCAB = TRANSLATION_WORDS + 3  # with padding 0


def arrays(dataset: tf.data.Dataset, count: int):
    """The `count` examples of a procedural dataset as NumPy arrays, in one read."""
    return tf.nest.map_structure(lambda tensor: tensor.numpy(),
                                 dataset.batch(count).get_single_element())


def adding_arrays(count: int, length: int, seed: int):
    return arrays(procedural.adding_problem(count, length, seed=seed), count)


def sign_memory_arrays(count: int, length: int, noise: float, seed: int):
    return arrays(procedural.sign_memory_task(count, length, noise, seed=seed), count)


def copy_arrays(count: int, delay: int, config: DiagnosticsConfig, seed: int):
    dataset = procedural.copy_task(count, delay, config.copy_length, config.copy_symbols, seed=seed)
    return arrays(dataset, count)


def copy_vocab_size(config: DiagnosticsConfig) -> int:
    return config.copy_symbols + 2  # blank, the symbols, the delimiter


def training_batches(inputs, targets, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled batches of in-memory examples, repeated."""
    return (
        tf.data.Dataset.from_tensor_slices((inputs, targets))
        .shuffle(len(inputs), seed=seed)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


@dataclasses.dataclass
class CharCorpus:
    """The language model's texts as ids (0 is padding; character `c` is
    `TAGGED_TEXT_ALPHABET.index(c) + 1`) and which validation characters are the
    long-range ones (the keys of closing tags)."""

    train: np.ndarray
    valid: np.ndarray
    valid_long_range: np.ndarray  # bool, one per validation character

    @property
    def vocab_size(self) -> int:
        return len(procedural.TAGGED_TEXT_ALPHABET) + 1


def char_ids(text: str) -> np.ndarray:
    table = np.zeros(128, np.int32)
    for index, char in enumerate(procedural.TAGGED_TEXT_ALPHABET):
        table[ord(char)] = index + 1
    return table[np.frombuffer(text.encode("ascii"), np.uint8)]


def char_corpus(config: DiagnosticsConfig) -> CharCorpus:
    train = procedural.tagged_text(config.lm_train_chars, seed=config.seed,
                                   language_seed=config.seed)
    valid = procedural.tagged_text(config.lm_valid_chars, seed=config.seed + HELDOUT_SEED_OFFSET,
                                   language_seed=config.seed)
    long_range = np.zeros(len(valid), bool)
    long_range[procedural.long_range_positions(valid)] = True
    return CharCorpus(char_ids(train), char_ids(valid), long_range)


def _with_markers(pair):
    """{"source", "target": target + EOS, "target_in": BOS + target}."""
    target = pair["target"]
    return {
        "source": pair["source"],
        "target": tf.concat([target, [EOS]], 0),
        "target_in": tf.concat([[BOS], target], 0),
    }


def translation_pairs(config: DiagnosticsConfig, count: int, heldout: bool) -> tf.data.Dataset:
    seed = config.seed + (HELDOUT_SEED_OFFSET if heldout else 0)
    pairs = procedural.reversal_translation(
        count, TRANSLATION_WORDS, max_length=config.translation_max_length, seed=seed,
        language_seed=config.seed)
    return pairs.map(_with_markers).cache()


def translation_batches(config: DiagnosticsConfig, strategy: str, seed: int) -> tf.data.Dataset:
    """The training pairs in batches of `translation_batch_size` made by one of the
    Morishita et al. strategies (one pass over the corpus)."""
    return batching.morishita_batches(
        translation_pairs(config, config.translation_pairs, heldout=False), strategy,
        batch_size=config.translation_batch_size, seed=seed)


def translation_heldout(config: DiagnosticsConfig) -> tf.data.Dataset:
    pairs = translation_pairs(config, config.valid_examples, heldout=True)
    return batching.batch(pairs, 256).cache()
