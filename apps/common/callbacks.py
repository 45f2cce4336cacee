"""The callbacks every training run gets, and the optimizer with gradient clipping."""

from __future__ import annotations

import keras

from apps.common.config import TrainConfig
from apps.common.run_dir import RunDir

HISTORY_FILE = "history.csv"
_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "bleu")


def best_so_far(config: TrainConfig, run_dir: RunDir) -> float | None:
    """The best `monitor` value of the epochs already in the run's history (None for a
    new run, or without a best checkpoint), so that a resumed run's checkpoint callback
    only replaces `best.keras` with a better epoch."""
    from apps.common.plots import read_history

    history_path = run_dir.root / HISTORY_FILE
    if not history_path.exists() or not run_dir.best_model_path.exists():
        return None
    values = read_history(history_path).get(config.monitor)
    if not values:
        return None
    mode = getattr(config, "monitor_mode", "auto")
    if mode == "auto":
        mode = "max" if any(key in config.monitor for key in _HIGHER_IS_BETTER) else "min"
    return max(values) if mode == "max" else min(values)


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """The named Keras optimizer; `clip_norm` > 0 sets its `global_clipnorm`,
    `ema_momentum` > 0 makes it keep a moving average of the weights (`use_ema`)."""
    kwargs = {"learning_rate": config.learning_rate}
    if config.clip_norm > 0:
        kwargs["global_clipnorm"] = config.clip_norm
    if config.ema_momentum > 0:
        if not config.ema_momentum < 1:
            raise ValueError(f"ema_momentum must be in [0, 1), got {config.ema_momentum}")
        kwargs.update(use_ema=True, ema_momentum=config.ema_momentum)
    optimizer = keras.optimizers.get({"class_name": config.optimizer, "config": kwargs})
    return optimizer


class ReduceLROnPlateauFrom(keras.callbacks.ReduceLROnPlateau):
    """`ReduceLROnPlateau` that counts no stalled epoch before `start_from_epoch` (as
    `EarlyStopping`'s argument: the first epochs, 0-based, are not judged). A score that
    stays flat at first (BLEU of averaged weights, about 0 for a few epochs) then cannot
    halve the rate before training has begun. Early epochs still log `learning_rate` and
    still set the best value the later ones are compared with."""

    def __init__(self, start_from_epoch: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.start_from_epoch = start_from_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_from_epoch:
            super().on_epoch_end(epoch, logs)
            return
        patience, self.patience = self.patience, float("inf")
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self.patience = patience
            self.wait = 0


def standard_callbacks(
    config: TrainConfig,
    run_dir: RunDir,
    save_best: bool = True,
    before_backup: list[keras.callbacks.Callback] | None = None,
) -> list[keras.callbacks.Callback]:
    """TerminateOnNaN, a CSV history, TensorBoard, the best-model checkpoint, early
    stopping when asked for, then `before_backup` and BackupAndRestore (a killed run
    resumes at its last epoch; last, so that it saves the state training goes on from).
    The progress bar is Keras's own (`fit(verbose=1)`)."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(run_dir.root / HISTORY_FILE), append=True),
        keras.callbacks.TensorBoard(log_dir=str(run_dir.log_dir)),
    ]
    if save_best:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(run_dir.best_model_path),
                monitor=config.monitor,
                mode=config.monitor_mode,
                save_best_only=True,
                # A resumed run keeps the best epoch of its earlier part.
                initial_value_threshold=best_so_far(config, run_dir),
            )
        )
    if config.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=config.monitor,
                mode=config.monitor_mode,
                patience=config.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    callbacks.extend(before_backup or [])
    callbacks.append(
        keras.callbacks.BackupAndRestore(str(run_dir.backup_dir), delete_checkpoint=False)
    )
    return callbacks
