"""Training with the shared callbacks, under the configured tf.distribute strategy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from apps.common.averaging import WeightAverage
from apps.common.callbacks import HISTORY_FILE, standard_callbacks
from apps.common.cli import RunContext
from apps.common.plots import plot_curves, read_history


def train_model(
    ctx: RunContext,
    build_compiled_model: Callable[[], keras.Model],
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    save_best: bool = True,
    metric_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Builds and compiles the model inside the strategy scope, fits it with the standard
    callbacks (resuming from the run's backup if there is one), plots the learning curves
    into plots/learning_curves.png and returns the model and the whole history.

    `metric_callbacks` run before the standard callbacks at each epoch end, so that values
    they add to the epoch logs (e.g. a validation BLEU, then usable as `monitor`) reach
    the best-model checkpoint, early stopping, the CSV history and TensorBoard;
    `extra_callbacks` run after them. With `ema_momentum` > 0, validation, the metric
    callbacks, the checkpoint and early stopping see the weights' moving average
    (`apps.common.averaging`)."""
    config = ctx.config
    strategy = ctx.strategy()
    with strategy.scope():
        model = build_compiled_model()
    average = WeightAverage() if config.ema_momentum > 0 else None
    callbacks = standard_callbacks(
        config,
        ctx.run_dir,
        save_best=save_best and validation_data is not None,
        before_backup=[average.restore] if average else None,
    )
    if average:
        metric_callbacks = [average.apply, *metric_callbacks]
    model.fit(
        train_data,
        validation_data=validation_data,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch or None,
        callbacks=[*metric_callbacks, *callbacks, *extra_callbacks],
        verbose=config.verbose,
        shuffle=False,  # tf.data pipelines shuffle themselves
    )
    history = read_history(ctx.run_dir.root / HISTORY_FILE)
    loss_curves = {name: values for name, values in history.items() if name.endswith("loss")}
    if loss_curves:
        path = plot_curves(loss_curves, ctx.run_dir.plot_dir / "learning_curves.png", title=ctx.app)
        logging.info("learning curves: %s", path)
    return model, history
