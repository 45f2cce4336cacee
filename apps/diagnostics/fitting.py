"""Short training runs scored every few steps, for the studies that train many small
models (a study reruns from scratch: no checkpoints, no resume).

Tracing a training step of a recurrent model takes seconds, far longer than the short
runs of a study; `Rewind` lets one compiled model (and its traced functions) train again
and again from new initial weights, as if it were new.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

Score = Callable[[keras.Model], float]


def initial_weights(build: Callable[[], keras.Model], seed: int) -> list:
    """The weights of a fresh `build()` under `seed`."""
    keras.utils.set_random_seed(seed)
    return build().get_weights()


class Rewind:
    """Restarts the training of `model`: `rewind(weights)` loads `weights` (e.g. those of
    a fresh build with another seed) and puts the optimizer back in its initial state
    (zero moments, iteration 0), so that training continues exactly as that fresh model
    with a new optimizer would, reusing the traced functions."""

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer | None = None):
        self.model = model
        self.optimizer = optimizer or model.optimizer
        if not self.optimizer.built:
            self.optimizer.build(model.trainable_variables)
        self.initial_state = [variable.numpy() for variable in self.optimizer.variables]

    def __call__(self, weights: list) -> None:
        self.model.set_weights(weights)
        for variable, value in zip(self.optimizer.variables, self.initial_state):
            variable.assign(value)


class _ScoreEvery(keras.callbacks.Callback):
    """Scores the model after every epoch (a chunk of steps); stops once `stop(score)`."""

    def __init__(self, score: Score, stop: Callable[[float], bool] | None):
        super().__init__()
        self.score, self.stop = score, stop
        self.values: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        value = float(self.score(self.model))
        self.values.append(value)
        if self.stop is not None and self.stop(value):
            self.model.stop_training = True


def fit_and_score(
    model: keras.Model,
    train_data: tf.data.Dataset,
    steps: int,
    every: int,
    score: Score,
    stop: Callable[[float], bool] | None = None,
    score_at_start: bool = False,
    verbose: int = 0,
) -> list[tuple[int, float]]:
    """Trains `model` (compiled) for `steps` batches of the repeated `train_data`, scoring
    it every `every` steps and after the last one; stops early once `stop(score)` holds.
    Returns the `(steps trained, score)` points, with step 0 if `score_at_start`."""
    points = [(0, float(score(model)))] if score_at_start else []
    chunks = [every] * (steps // every) + ([steps % every] if steps % every else [])
    trained = 0
    for size in sorted(set(chunks), reverse=True):
        count = chunks.count(size)
        callback = _ScoreEvery(score, stop)
        model.fit(train_data, epochs=count, steps_per_epoch=size, callbacks=[callback],
                  verbose=verbose, shuffle=False)  # the dataset shuffles itself
        for value in callback.values:
            trained += size
            points.append((trained, value))
        if model.stop_training:
            break
    return points
