"""Tasks the tuner trains on: JSB Chorales (Greff et al.'s music task) and the procedural
tasks of `pipelines.procedural` (adding problem, copy task, sign memory).

A task owns its data (loaded once per process, on first use) and builds a compiled Keras
model from the values of one trial (`cell`, `units`, `learning_rate`, ... see
`tuning.space`). Its `objective` names the validation metric the oracle minimises.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import layers
from pipelines import batching, music, procedural
from tuning.space import make_cell, make_optimizer

PACKAGE = "rnn_suite_tuning"


@dataclasses.dataclass
class TaskData:
    """Datasets of a task. `test` (if any) is evaluated once per trial, at the end, with the
    weights of the best validation epoch."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset | None = None
    steps_per_epoch: int | None = None  # None: one pass over `train`


@dataclasses.dataclass
class TaskOptions:
    """Options of the built-in tasks (each task reads the ones it needs)."""

    data: str = ""  # JSB: JSON file with "train", "valid" and optionally "test"
    batch_size: int = 32
    seed: int = 1234
    length: int = 50  # procedural: sequence length / copy delay
    train_examples: int = 4_000
    validation_examples: int = 1_000
    test_examples: int = 1_000
    steps_per_epoch: int = 0  # procedural: 0 = one pass over the training examples


class Task:
    """A data set plus the model family the ablation trains on it."""

    name = ""
    description = ""
    objective = "val_loss"  # a key of the Keras logs; minimised
    metric_label = "loss"  # how tables call the metric
    #: Defaults of `tuning.space.SearchSpace` for this task (the command line overrides).
    default_space: dict = {}

    def __init__(self, options: TaskOptions):
        self.options = options

    @functools.cached_property
    def data(self) -> TaskData:
        return self.load()

    def load(self) -> TaskData:
        raise NotImplementedError

    def build_model(self, values: dict) -> keras.Model:
        raise NotImplementedError

    def _recurrent(self, inputs, values: dict, return_sequences: bool):
        hidden = inputs
        if values.get("input_noise", 0.0) > 0:
            hidden = keras.layers.GaussianNoise(values["input_noise"], name="input_noise")(hidden)
        return layers.Recurrent(
            make_cell(values), return_sequences=return_sequences, name="recurrent"
        )(hidden)


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


class JSBChoralesTask(Task):
    """Next-step prediction of 88-dimensional binary piano-roll frames (MIDI 21..108).

    Loss and metric: the negative log-likelihood per time step, summed over the 88
    Bernoulli outputs (Boulanger-Lewandowski et al. 2012; Greff et al. 2017, Sec. 4.3).
    The model is Greff's: one recurrent layer, a sigmoid (here: logit) output layer.
    """

    name = "jsb"
    description = "JSB Chorales: next-frame negative log-likelihood (nats per time step)"
    objective = "val_nll"
    metric_label = "NLL"
    default_space = {
        "units": (20, 200),
        "learning_rate": (1e-4, 3e-2),
        "input_noise": (0.0, 0.5),
        "dropout": (0.0, 0.0),
        "clip_norms": [1.0],
    }

    def load(self) -> TaskData:
        if not self.options.data:
            raise ValueError(
                "the jsb task needs its data file: --data PATH to a JSON file "
                '{"train": [...], "valid": [...]} of chorales (lists of steps of MIDI '
                "pitches), e.g. jsb_chorales.json of the pyro-ppl datasets"
            )
        path = Path(self.options.data)
        if not path.exists():
            raise FileNotFoundError(f"--data {path}: no such file")
        splits = music.read_jsb(str(path))
        missing = [name for name in ("train", "valid") if name not in splits]
        if missing:
            raise ValueError(
                f"{path}: no {' or '.join(repr(m) for m in missing)} split; the file must "
                f"hold 'train' and 'valid' (and optionally 'test'), found {sorted(splits)}"
            )
        batch_size, seed = self.options.batch_size, self.options.seed
        return TaskData(
            train=music_batches(splits["train"], batch_size, shuffle=True, seed=seed),
            validation=music_batches(splits["valid"], batch_size, shuffle=False, seed=seed),
            test=(
                music_batches(splits["test"], batch_size, shuffle=False, seed=seed)
                if "test" in splits
                else None
            ),
        )

    def build_model(self, values: dict) -> keras.Model:
        frames = keras.Input(shape=(None, music.NUM_PITCHES), name="frames")
        hidden = self._recurrent(frames, values, return_sequences=True)
        logits = keras.layers.Dense(music.NUM_PITCHES, name="pitch_logits")(hidden)
        model = keras.Model(frames, logits, name=f"jsb_{values['cell']}")
        model.compile(
            optimizer=make_optimizer(values),
            loss=FrameNLLLoss(),
            weighted_metrics=[FrameNLL(name="nll")],  # `metrics` would get no step weights
        )
        return model


# --------------------------------------------------------------------------------------
# Procedural tasks


class _ProceduralTask(Task):
    def _generate(self, num_examples: int, seed: int) -> tf.data.Dataset:
        raise NotImplementedError

    def load(self) -> TaskData:
        options = self.options
        seed = options.seed
        train = self._generate(options.train_examples, seed)
        train = train.shuffle(options.train_examples, seed=seed).batch(options.batch_size)
        steps = options.steps_per_epoch or None
        if steps:
            train = train.repeat()
        return TaskData(
            train=train.prefetch(tf.data.AUTOTUNE),
            validation=self._generate(options.validation_examples, seed + 1_000_003)
            .batch(500)
            .cache()
            .prefetch(tf.data.AUTOTUNE),
            test=self._generate(options.test_examples, seed + 2_000_003)
            .batch(500)
            .cache()
            .prefetch(tf.data.AUTOTUNE),
            steps_per_epoch=steps,
        )


class AddingTask(_ProceduralTask):
    """The adding problem (Hochreiter & Schmidhuber 1997): regress the sum of the two marked
    values of a length-`length` sequence. Predicting the mean scores MSE 1/6."""

    name = "adding"
    description = "adding problem: mean squared error (the mean predictor scores 0.167)"
    objective = "val_loss"
    metric_label = "MSE"
    default_space = {"units": (16, 128), "learning_rate": (1e-4, 3e-2), "clip_norms": [1.0]}

    def _generate(self, num_examples, seed):
        return procedural.adding_problem(num_examples, self.options.length, seed=seed)

    def build_model(self, values):
        sequence = keras.Input(shape=(self.options.length, 2), name="sequence")
        hidden = self._recurrent(sequence, values, return_sequences=False)
        total = keras.layers.Dense(1, name="sum")(hidden)
        model = keras.Model(sequence, ops.squeeze(total, -1), name=f"adding_{values['cell']}")
        model.compile(optimizer=make_optimizer(values), loss="mse")
        return model


class CopyTask(_ProceduralTask):
    """The copy task (Arjovsky et al. 2016): reproduce 10 symbols after `length` blanks;
    cross-entropy per step (memoryless guessing: 10 log 8 / (length + 20))."""

    name = "copy"
    description = "copy task: cross-entropy per step (nats)"
    objective = "val_loss"
    metric_label = "cross-entropy"
    default_space = {"units": (16, 128), "learning_rate": (1e-4, 3e-2), "clip_norms": [1.0]}
    num_symbols = 8
    copy_length = 10

    def _generate(self, num_examples, seed):
        return procedural.copy_task(
            num_examples, self.options.length, self.copy_length, self.num_symbols, seed=seed
        )

    def build_model(self, values):
        vocabulary = self.num_symbols + 2
        tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
        one_hot = ops.one_hot(tokens, vocabulary)
        hidden = self._recurrent(one_hot, values, return_sequences=True)
        logits = keras.layers.Dense(vocabulary, name="logits")(hidden)
        model = keras.Model(tokens, logits, name=f"copy_{values['cell']}")
        model.compile(
            optimizer=make_optimizer(values),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        return model


class SignMemoryTask(_ProceduralTask):
    """Remember the sign of the first of `length` noisy inputs; binary cross-entropy
    (chance: log 2 = 0.693)."""

    name = "sign_memory"
    description = "sign memory: binary cross-entropy (chance 0.693)"
    objective = "val_loss"
    metric_label = "cross-entropy"
    default_space = {"units": (8, 64), "learning_rate": (1e-4, 3e-2), "clip_norms": [1.0]}

    def _generate(self, num_examples, seed):
        return procedural.sign_memory_task(num_examples, self.options.length, seed=seed)

    def build_model(self, values):
        sequence = keras.Input(shape=(self.options.length, 1), name="sequence")
        hidden = self._recurrent(sequence, values, return_sequences=False)
        probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden)
        model = keras.Model(
            sequence, ops.squeeze(probability, -1), name=f"sign_memory_{values['cell']}"
        )
        model.compile(
            optimizer=make_optimizer(values),
            loss="binary_crossentropy",
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        )
        return model


TASKS: dict[str, type[Task]] = {
    task.name: task for task in (JSBChoralesTask, AddingTask, CopyTask, SignMemoryTask)
}


def make_task(name: str, options: TaskOptions) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name](options)


def chance_level(task: Task) -> float | None:
    """The metric of a model that ignores its inputs (for reference lines in plots)."""
    if isinstance(task, AddingTask):
        return 1.0 / 6.0
    if isinstance(task, SignMemoryTask):
        return math.log(2.0)
    if isinstance(task, CopyTask):
        length = task.options.length
        return task.copy_length * math.log(task.num_symbols) / (length + 2 * task.copy_length)
    return None
