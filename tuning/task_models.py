"""Data and models of the built-in tasks (`tuning.tasks`): one recurrent layer of the
suite over the (optionally noisy) inputs and a read-out, compiled with the apps'
optimizer (`apps.common.optimizer.make_optimizer`)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import layers
from apps.common.optimizer import make_optimizer
from pipelines import batching, music, procedural
from tuning.adapters import Prepared
from tuning.tasks import COPY_LENGTH, COPY_SYMBOLS, JSBConfig, ProceduralConfig, TaskModelConfig

PACKAGE = "rnn_suite_tuning"
#: Added to --seed for the held-out splits of the procedural tasks.
SPLIT_SEED_OFFSETS = {"valid": 1_000_003, "test": 2_000_003}


def recurrent(inputs, config: TaskModelConfig, return_sequences: bool):
    """Gaussian input noise (if any), then one `layers.Recurrent` of the config's cell."""
    hidden = inputs
    if config.input_noise > 0:
        hidden = keras.layers.GaussianNoise(config.input_noise, name="input_noise")(hidden)
    extra = {"dropout": config.dropout} if config.dropout > 0 else {}
    cell = layers.build_cell(config.cell, config.units, **extra)
    return layers.Recurrent(cell, return_sequences=return_sequences, name="recurrent")(hidden)


# --------------------------------------------------------------------------------------
# JSB Chorales


@keras.saving.register_keras_serializable(package=PACKAGE)
def frame_nll(y_true, logits):
    """Negative log-likelihood (nats) of each binary frame under independent Bernoulli
    outputs: the sigmoid cross-entropy summed over the pitches, shape `[batch, time]`."""
    y_true = ops.cast(y_true, logits.dtype)
    return ops.sum(ops.binary_crossentropy(y_true, logits, from_logits=True), axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FrameNLLLoss(keras.losses.Loss):
    """`frame_nll` averaged over the unpadded time steps of a batch (the step weights are
    the sample weights: sum(nll * weight) / sum(weight))."""

    def __init__(
        self, name: str = "frame_nll", reduction: str = "mean_with_sample_weight", **kwargs
    ):
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true, y_pred):
        return frame_nll(y_true, y_pred)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FrameNLL(keras.metrics.Metric):
    """Mean negative log-likelihood per (unpadded) time step, summed over the 88 pitches:
    sum(nll * weight) / sum(weight) over everything seen, exact across batches of
    different lengths (Keras' `Mean` would weight batches, not time steps)."""

    def __init__(self, name: str = "nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = frame_nll(y_true, y_pred)
        weights = (
            ops.ones_like(values)
            if sample_weight is None
            else ops.broadcast_to(ops.cast(sample_weight, values.dtype), ops.shape(values))
        )
        self.total.assign_add(ops.sum(values * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


def _with_weights(inputs: tf.Tensor, targets: tf.Tensor):
    return inputs, targets, tf.ones(tf.shape(inputs)[:1], tf.float32)


def music_batches(
    rolls: list[np.ndarray], batch_size: int, shuffle: bool, seed: int
) -> tf.data.Dataset:
    """`(frames[:-1], frames[1:], step_weights)` batches of chorales of similar length,
    padded with zero frames of weight 0 (padding adds nothing to loss or metric)."""
    dataset = music.next_frame_dataset(rolls).map(_with_weights).cache()
    return batching.finalize(
        batching.bucket_by_length(
            dataset,
            length_fn=lambda example: tf.shape(example[0])[0],
            batch_size=batch_size,
            length_bucket_width=16,
            shuffle=shuffle,
            seed=seed,
        )
    )


def jsb_data(config: JSBConfig) -> Prepared:
    path = Path(config.data)
    if not path.exists():
        raise FileNotFoundError(f"--data {path}: no such file")
    splits = music.read_jsb(str(path))
    missing = [name for name in ("train", "valid") if name not in splits]
    if missing:
        raise ValueError(
            f"{path}: no {' or '.join(repr(m) for m in missing)} split; the file must "
            f"hold 'train' and 'valid' (and optionally 'test'), found {sorted(splits)}"
        )

    def batches(name: str, shuffle: bool):
        return music_batches(splits[name], config.batch_size, shuffle=shuffle, seed=config.seed)

    return Prepared(
        train=batches("train", True),
        validation=batches("valid", False),
        test=batches("test", False) if "test" in splits else None,
    )


def jsb_model(config: JSBConfig) -> keras.Model:
    frames = keras.Input(shape=(None, music.NUM_PITCHES), name="frames")
    hidden = recurrent(frames, config, return_sequences=True)
    logits = keras.layers.Dense(music.NUM_PITCHES, name="pitch_logits")(hidden)
    model = keras.Model(frames, logits, name=f"jsb_{config.cell}")
    model.compile(
        optimizer=make_optimizer(config),
        loss=FrameNLLLoss(),
        weighted_metrics=[FrameNLL(name="nll")],  # `metrics` would get no step weights
    )
    return model


# --------------------------------------------------------------------------------------
# Procedural tasks


def _examples(task: str, count: int, config: ProceduralConfig, seed: int) -> tf.data.Dataset:
    if task == "copy":
        return procedural.copy_task(count, config.length, COPY_LENGTH, COPY_SYMBOLS, seed=seed)
    return procedural.sign_memory_task(count, config.length, seed=seed)


def procedural_data(task: str, config: ProceduralConfig) -> Prepared:
    """Training sequences (shuffled; repeated when --steps-per-epoch is set), and the
    validation and test sequences drawn with other seeds."""
    train = _examples(task, config.train_examples, config, config.seed)
    train = train.shuffle(config.train_examples, seed=config.seed).batch(config.batch_size)
    if config.steps_per_epoch:
        train = train.repeat()

    def heldout(split: str, count: int):
        dataset = _examples(task, count, config, config.seed + SPLIT_SEED_OFFSETS[split])
        return dataset.batch(500).cache().prefetch(tf.data.AUTOTUNE)

    return Prepared(
        train=train.prefetch(tf.data.AUTOTUNE),
        validation=heldout("valid", config.valid_examples),
        test=heldout("test", config.test_examples),
        steps_per_epoch=config.steps_per_epoch or None,
    )


def copy_model(config: ProceduralConfig) -> keras.Model:
    vocabulary = COPY_SYMBOLS + 2
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    hidden = recurrent(ops.one_hot(tokens, vocabulary), config, return_sequences=True)
    logits = keras.layers.Dense(vocabulary, name="logits")(hidden)
    model = keras.Model(tokens, logits, name=f"copy_{config.cell}")
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def sign_memory_model(config: ProceduralConfig) -> keras.Model:
    sequence = keras.Input(shape=(config.length, 1), name="sequence")
    hidden = recurrent(sequence, config, return_sequences=False)
    probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden)
    model = keras.Model(sequence, ops.squeeze(probability, -1), name=f"sign_memory_{config.cell}")
    model.compile(
        optimizer=make_optimizer(config),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


MODELS = {"copy": copy_model, "sign_memory": sign_memory_model}
