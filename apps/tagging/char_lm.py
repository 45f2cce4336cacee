"""Contextual string features (Akbik et al. 2018, "Contextual String Embeddings for
Sequence Labeling"): a forward and a backward character language model, trained from
scratch on the training sentences, whose hidden states at the word boundaries are word
features of the tagger.

A sentence is read as one character sequence, its words separated (and surrounded) by a
separator symbol: `_w1_w2_..._wT_`. The forward LM reads it left to right; word i's
forward feature is its state on the separator after the word (it has read the sentence
up to and including word i). The backward LM reads it right to left; word i's backward
feature is its state on the separator before the word (it has read word i and everything
after it). The tagger sees [forward; backward] beside its word embedding. Both LMs are
frozen once trained: the tagger's training and dev features are computed once, and the
export runs the LMs in the graph.

Character ids are the tagger's (`Featurizer.char_ids`: 0 padding, 1 unknown, then the
training characters); the separator is the next id.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import layers
from apps.common.checkpoints import load_model_file
from apps.common.time_budget import TrainingClock
from apps.tagging.config import TaggingConfig

logger = logging.getLogger(__name__)

DIRECTIONS = ("forward", "backward")
STATS_FILE = "char_lm.json"
BATCH_SIZE = 32  # sentences per LM training batch
LEARNING_RATE = 2e-3
CLIP_NORM = 1.0


def sentence_char_ids(char_ids: tf.RaggedTensor, separator: int) -> tuple[tf.RaggedTensor, ...]:
    """Words' character ids [B, (T), (C)] -> each sentence as one sequence, and positions.

    Returns:
        `(ids [B, (L)], after [B, (T)], before [B, (T)])`: `ids` is `sep w1 sep w2 ... wT
        sep` (L = sum of word lengths + T + 1); `after[b, i]` is the index in `ids[b]` of
        the separator after word i, `before[b, i]` that of the separator before it.
    """
    words = char_ids.values  # [N, (C)]: every word of the batch
    separators = tf.fill([words.nrows(), 1], tf.cast(separator, words.dtype))
    with_separator = tf.concat([words, separators], axis=1)  # [N, (C + 1)]
    words_per_sentence = char_ids.row_lengths()
    body = tf.RaggedTensor.from_row_lengths(with_separator, words_per_sentence).merge_dims(1, 2)
    start = tf.fill([char_ids.nrows(), 1], tf.cast(separator, words.dtype))
    ids = tf.concat([start, body], axis=1)
    # Within each sentence, the separator after word i sits at sum_{j <= i} (C_j + 1).
    lengths = with_separator.row_lengths()
    inclusive = tf.cumsum(lengths)
    first_word = tf.cumsum(words_per_sentence, exclusive=True)
    offsets = tf.gather(tf.concat([tf.zeros([1], lengths.dtype), inclusive], axis=0), first_word)
    after = inclusive - tf.gather(offsets, char_ids.value_rowids())
    before = after - lengths
    as_rows = lambda flat: tf.RaggedTensor.from_row_lengths(flat, words_per_sentence)  # noqa: E731
    return ids, as_rows(after), as_rows(before)


def build_language_model(vocabulary_size: int, embedding_size: int, units: int, name: str) -> keras.Model:
    """ids [B, L] -> next-character logits [B, L, vocabulary_size] (one LSTM layer; ids 0
    are padding, masked)."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    embedded = keras.layers.Embedding(vocabulary_size, embedding_size, mask_zero=True, name="embedding")(ids)
    states = layers.Recurrent(layers.build_cell("lstm", units), return_sequences=True, name="lstm")(embedded)
    logits = keras.layers.Dense(vocabulary_size, name="next_character")(states)
    model = keras.Model(ids, logits, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE, global_clipnorm=CLIP_NORM),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    return model


def state_model(language_model: keras.Model) -> keras.Model:
    """ids [B, L] -> the LSTM states [B, L, units] of a language model."""
    return keras.Model(language_model.input, language_model.get_layer("lstm").output)


class ContextualStrings(tf.Module):
    """Words' character ids [B, (T), (C)] -> [B, T, 2 * units] contextual string features
    (forward state after each word; backward state before it), zeros at padding words."""

    def __init__(self, forward: keras.Model, backward: keras.Model, separator: int):
        super().__init__(name="contextual_strings")
        self.forward = state_model(forward)
        self.backward = state_model(backward)
        self.separator = separator
        self.size = 2 * int(self.forward.output.shape[-1])

    def __call__(self, char_ids: tf.RaggedTensor) -> tf.Tensor:
        ids, after, before = sentence_char_ids(char_ids, self.separator)
        lengths = ids.row_lengths()
        dense = tf.cast(ids.to_tensor(0), tf.int32)
        forward = self.forward(dense, training=False)
        reversed_ids = tf.reverse_sequence(dense, lengths, seq_axis=1, batch_axis=0)
        backward = tf.reverse_sequence(self.backward(reversed_ids, training=False), lengths, seq_axis=1, batch_axis=0)
        mask = tf.sequence_mask(char_ids.row_lengths(), tf.shape(after.to_tensor(0))[1])
        features = tf.concat(
            [
                tf.gather(forward, after.to_tensor(0), batch_dims=1),
                tf.gather(backward, before.to_tensor(0), batch_dims=1),
            ],
            axis=-1,
        )
        return tf.where(mask[..., None], tf.cast(features, tf.float32), 0.0)


def _sequences(tokens: list[list[str]], featurizer, separator: int) -> list[np.ndarray]:
    """The character-id sequence of every sentence (as `sentence_char_ids`)."""
    sequences = []
    for start in range(0, len(tokens), 512):
        ragged = tf.ragged.constant(tokens[start : start + 512], dtype=tf.string, ragged_rank=1)
        ids, _, _ = sentence_char_ids(featurizer.char_ids(ragged), separator)
        sequences.extend(np.asarray(row, np.int32) for row in ids.to_list())
    return sequences


def _batches(sequences: list[np.ndarray], backward: bool, shuffle: bool, seed: int) -> tf.data.Dataset:
    """(inputs, next-character targets) batches of similar length; targets 0 at padding."""
    if backward:
        sequences = [sequence[::-1] for sequence in sequences]
    order = np.argsort([len(sequence) for sequence in sequences], kind="stable")
    batches = [order[i : i + BATCH_SIZE] for i in range(0, len(order), BATCH_SIZE)]

    def generate():
        rng = np.random.default_rng(seed)
        for index in rng.permutation(len(batches)) if shuffle else range(len(batches)):
            rows = [sequences[i] for i in batches[index]]
            width = max(len(row) for row in rows)
            padded = np.zeros((len(rows), width), np.int32)
            for r, row in enumerate(rows):
                padded[r, : len(row)] = row
            yield padded[:, :-1], padded[:, 1:]

    spec = tf.TensorSpec((None, None), tf.int32)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=(spec, spec))
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)


def train_language_models(
    train_tokens: list[list[str]],
    dev_tokens: list[list[str]],
    featurizer,
    config: TaggingConfig,
    directory: Path,
) -> dict:
    """Trains the forward and backward LMs on the training sentences (at most
    `char_lm_epochs` epochs and `char_lm_minutes` in all, half each) unless `directory`
    already holds them; returns their statistics (bits per character on train and dev,
    epochs, seconds), also saved in `directory/char_lm.json`."""
    directory = Path(directory)
    stats_path = directory / STATS_FILE
    if stats_path.exists() and all((directory / f"{d}.keras").exists() for d in DIRECTIONS):
        return json.loads(stats_path.read_text(encoding="utf-8"))
    directory.mkdir(parents=True, exist_ok=True)
    separator = featurizer.char_vocabulary_size
    train_sequences = _sequences(train_tokens, featurizer, separator)
    dev_sequences = _sequences(dev_tokens, featurizer, separator)
    stats: dict = {"char_lm_units": config.char_lm_units, "char_lm_parameters": 0}
    for index, direction in enumerate(DIRECTIONS):
        keras.utils.set_random_seed(config.seed + index)
        model = build_language_model(separator + 1, config.char_lm_embedding_size, config.char_lm_units, direction)
        clock = TrainingClock(directory / f"clock_{direction}.json", config.char_lm_minutes / 2)
        start, cpu_start = time.monotonic(), time.process_time()
        history = model.fit(
            _batches(train_sequences, direction == "backward", True, config.seed),
            epochs=config.char_lm_epochs,
            callbacks=[clock],
            verbose=config.verbose,
            shuffle=False,  # the batches come shuffled
        )
        stats[f"char_lm_{direction}_wall_time_s"] = round(time.monotonic() - start, 1)
        stats[f"char_lm_{direction}_cpu_time_s"] = round(time.process_time() - cpu_start, 1)
        stats[f"char_lm_{direction}_epochs"] = len(history.history["loss"])
        stats[f"char_lm_{direction}_train_bpc"] = float(history.history["loss"][-1]) / np.log(2)
        dev = _batches(dev_sequences, direction == "backward", False, 0)
        stats[f"char_lm_{direction}_dev_bpc"] = bits_per_character(model, dev)
        logger.info("%s character LM: dev %.3f bits per character", direction, stats[f"char_lm_{direction}_dev_bpc"])
        stats["char_lm_parameters"] += int(model.count_params())
        model.save(directory / f"{direction}.keras")
    stats["char_lm_wall_time_s"] = sum(stats[f"char_lm_{d}_wall_time_s"] for d in DIRECTIONS)
    stats["char_lm_cpu_time_s"] = sum(stats[f"char_lm_{d}_cpu_time_s"] for d in DIRECTIONS)
    stats_path.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def bits_per_character(model: keras.Model, batches: tf.data.Dataset) -> float:
    """Mean cross-entropy in bits over every real (non-padding) target character."""
    total, count = 0.0, 0
    for inputs, targets in batches:
        logits = model(inputs, training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
        real = tf.cast(targets > 0, losses.dtype)
        total += float(tf.reduce_sum(losses * real))
        count += int(tf.reduce_sum(real))
    return total / max(count, 1) / np.log(2)


def load_contextual_strings(directory: Path, separator: int) -> ContextualStrings:
    """The frozen feature extractor of the LMs saved in `directory`."""
    directory = Path(directory)
    models = []
    for direction in DIRECTIONS:
        path = directory / f"{direction}.keras"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no character language model; run `train` first")
        models.append(load_model_file(path, compile=True))
    return ContextualStrings(*models, separator=separator)
