"""Training and scoring the character language model of the forget-bias and tbptt
studies on the procedural tagged text (`apps.diagnostics.data.char_corpus`).

Training is truncated BPTT (`pipelines.streams`): the text is cut into `batch_size`
parallel streams, walked `bptt` characters at a time; the final states of a window start
the next one (gradients stop at the window edge), and every pass over the text starts the
streams from zero states. Scoring reads the whole validation text the same way, with the
state carried across every window edge, and reports nats per character over all
characters and over the long-range ones (the keys of closing tags).
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np
import tensorflow as tf

from apps.common.optimizer import make_optimizer
from apps.diagnostics.data import CharCorpus
from apps.diagnostics.fitting import Rewind
from apps.diagnostics.model import build_study_cell, char_language_model
from pipelines.streams import stream_arrays

EVAL_STREAMS, EVAL_WINDOW = 8, 200


@dataclasses.dataclass
class LanguageModelRun:
    """Validation points `(characters seen, nats/char, long-range nats/char)` and the
    training speed (characters a second of training steps, the first step's tracing
    left out)."""

    points: list[tuple[int, float, float]]
    chars_per_second: float
    train_seconds: float


def build(cell_name: str, units: int, corpus: CharCorpus) -> keras.Model:
    return char_language_model(build_study_cell(cell_name, units), corpus.vocab_size)


def _zero_states(model: keras.Model, batch: int) -> list[tf.Tensor]:
    return [tf.zeros((batch, int(state.shape[-1]))) for state in model.inputs[1:]]


class Scorer:
    """Scores a model on the validation text: `scorer()` is `(nats per character, nats
    per long-range character)`."""

    def __init__(self, model: keras.Model, corpus: CharCorpus):
        self.model = model
        self.inputs, self.targets, self.weights = stream_arrays(
            corpus.valid, EVAL_STREAMS, EVAL_WINDOW, drop_remainder=False)
        _, self.long_range, _ = stream_arrays(corpus.valid_long_range.astype(np.int32),
                                              EVAL_STREAMS, EVAL_WINDOW, drop_remainder=False)
        self.step = tf.function(lambda x, states: model([x, *states], training=False))

    def __call__(self) -> tuple[float, float]:
        states = _zero_states(self.model, EVAL_STREAMS)
        total = total_long = 0.0
        for window in range(len(self.inputs)):
            logits, *states = self.step(self.inputs[window], states)
            losses = keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(
                self.targets[window], logits, from_logits=True))
            weighted = losses * self.weights[window]
            total += float(np.sum(weighted))
            total_long += float(np.sum(weighted * self.long_range[window]))
        long_range_count = float((self.weights * self.long_range).sum())
        long_range_nats = total_long / long_range_count if long_range_count else float("nan")
        return total / float(self.weights.sum()), long_range_nats


class Trainer:
    """Truncated-BPTT training of `model` with Adam (`options.learning_rate`,
    `options.clip_norm`) on windows of `bptt` characters of `batch_size` streams, its step
    traced once: `trainer.rewind(weights)` restarts it from other initial weights."""

    def __init__(self, model: keras.Model, corpus: CharCorpus, options, batch_size: int,
                 bptt: int):
        self.model, self.batch_size, self.bptt = model, batch_size, bptt
        self.inputs, self.targets, _ = stream_arrays(corpus.train, batch_size, bptt)
        optimizer = make_optimizer(options)
        self.rewind = Rewind(model, optimizer)
        self.score = Scorer(model, corpus)
        variables = model.trainable_variables

        @tf.function
        def train_step(x, y, states):
            with tf.GradientTape() as tape:
                logits, *new_states = model([x, *states], training=True)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                    y, logits, from_logits=True))
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss, new_states

        self.train_step = train_step

    def train(self, steps: int, evaluate_at: list[int]) -> LanguageModelRun:
        """Trains for `steps` windows, scored after each step count in `evaluate_at` (and
        before the first step if it holds 0)."""
        chars_a_step = self.batch_size * self.bptt
        points, seconds = [], 0.0
        if 0 in evaluate_at:
            points.append((0, *self.score()))
        states = _zero_states(self.model, self.batch_size)
        for step in range(steps):
            window = step % len(self.inputs)
            if window == 0:  # a new pass over the text: every stream starts afresh
                states = _zero_states(self.model, self.batch_size)
            start = time.perf_counter()
            loss, states = self.train_step(self.inputs[window], self.targets[window], states)
            loss = float(loss)  # waits for the step
            if step > 0:  # the first step traces the function
                seconds += time.perf_counter() - start
            if not math.isfinite(loss):
                raise RuntimeError(f"the language model's loss became {loss} at step {step + 1}")
            if step + 1 in evaluate_at:
                points.append(((step + 1) * chars_a_step, *self.score()))
        timed = (steps - 1) * chars_a_step
        return LanguageModelRun(points, timed / seconds if seconds > 0 else float("nan"), seconds)
