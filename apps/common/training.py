"""Training with the shared callbacks, under the configured tf.distribute strategy and
precision, with the learning-rate schedule and the wall-clock budget of the config."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from apps.common.averaging import WeightAverage
from apps.common.callbacks import (
    BACKUP_RECORD,
    HISTORY_FILE,
    monitor_mode,
    read_backup_record,
    resume_history,
    standard_callbacks,
)
from apps.common.cli import RunContext
from apps.common.optimizer import schedule_callbacks
from apps.common.plots import plot_curves, read_history
from apps.common.precision import dtype_policy
from apps.common.strategy import fewest_across_workers
from apps.common.time_budget import CLOCK_FILE, TrainingClock


@dataclasses.dataclass
class TrainingResult:
    """What `train_model` returns: the trained model (the last epoch's weights, or the
    weights' average with --ema-momentum), the whole history of the run (earlier
    processes of a resumed run included), and its training time summed over processes."""

    model: keras.Model
    history: dict[str, list[float]]
    wall_time_s: float
    cpu_time_s: float

    def __iter__(self):  # `model, history = train_model(...)`
        return iter((self.model, self.history))

    def metrics(self) -> dict:
        """The training figures every app reports."""
        return {
            "parameters": int(self.model.count_params()),
            "epochs_trained": len(self.history.get("loss", [])),
            "train_loss": self.history.get("loss", [None])[-1],
            "train_wall_time_s": round(self.wall_time_s, 1),
            # CPU seconds of all threads: comparable across runs on a shared, busy machine.
            "train_cpu_time_s": round(self.cpu_time_s, 1),
        }


def completed_epochs(run_dir) -> int:
    """Epochs a resumed run's earlier processes completed (BackupAndRestore's record)."""
    path = run_dir.backup_dir / BACKUP_RECORD
    try:
        record = read_backup_record(run_dir.backup_dir)
        return 0 if record is None else int(record["epoch"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a BackupAndRestore record ({error})") from error


def train_model(
    ctx: RunContext,
    build_compiled_model: Callable[[], keras.Model],
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    save_best: bool = True,
    metric_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Builds and compiles the model inside the strategy scope and the `mixed_precision`
    policy, fits it with the standard callbacks (resuming from the run's backup if there
    is one), the `lr_schedule` and the `max_train_minutes` clock, plots the learning
    curves into plots/learning_curves.png and returns a `TrainingResult`.

    A resumed run restores the weights, the optimizer (and the layers' random-number
    states) of its last completed epoch; with `steps_per_epoch` set, it also skips the
    batches the earlier epochs trained on, so that a seeded, repeated `train_data` stream
    goes on where an uninterrupted run would be (apps/adding's resumed runs end with the
    uninterrupted run's weights). With one pass per epoch (`steps_per_epoch` 0) each epoch
    re-reads the dataset and a resumed run's first epoch sees the first epoch's order.

    `metric_callbacks` run before the standard callbacks at each epoch end, so that values
    they add to the epoch logs (e.g. a validation BLEU, then usable as `monitor`) reach
    the best-model checkpoint, early stopping, the CSV history and TensorBoard;
    `extra_callbacks` run after them. With `ema_momentum` > 0, validation, the metric
    callbacks, the checkpoint and early stopping see the weights' moving average
    (`apps.common.averaging`)."""
    config = ctx.config
    strategy = ctx.strategy()
    with strategy.scope(), dtype_policy(config.mixed_precision):
        model = build_compiled_model()
    average = WeightAverage() if config.ema_momentum > 0 else None
    clock = TrainingClock(ctx.run_dir.backup_dir / CLOCK_FILE, config.max_train_minutes)
    # The workers of a multi-worker run killed between their commits of an epoch resume
    # together from the fewest epochs any of them committed.
    completed = fewest_across_workers(strategy, completed_epochs(ctx.run_dir))
    resume_history(ctx.run_dir, completed)  # before the checkpoint reads its best epoch
    callbacks = standard_callbacks(
        config,
        ctx.run_dir,
        save_best=save_best and validation_data is not None,
        before_backup=[average.restore] if average else None,
        resume_epoch=completed,
    )
    if average:
        metric_callbacks = [average.apply, *metric_callbacks]
    schedule = schedule_callbacks(config, monitor_mode(config))
    if completed and config.steps_per_epoch:
        # The batches the earlier processes trained on: a resumed run goes on with the
        # batches an uninterrupted run would see next, not from the start of the stream.
        train_data = train_data.skip(completed * config.steps_per_epoch)
    model.fit(
        train_data,
        validation_data=validation_data,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch or None,
        callbacks=[*metric_callbacks, *schedule, *callbacks, *extra_callbacks, clock],
        verbose=config.verbose,
        shuffle=False,  # tf.data pipelines shuffle themselves
    )
    history = read_history(ctx.run_dir.root / HISTORY_FILE)
    loss_curves = {name: values for name, values in history.items() if name.endswith("loss")}
    if loss_curves:
        path = plot_curves(loss_curves, ctx.run_dir.plot_dir / "learning_curves.png", title=ctx.app)
        logging.info("learning curves: %s", path)
    wall, cpu = clock.totals()
    return TrainingResult(model, history, wall, cpu)
