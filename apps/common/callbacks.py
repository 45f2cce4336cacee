"""The callbacks every training run gets, and the optimizer with gradient clipping."""

from __future__ import annotations

import keras

from apps.common.config import TrainConfig
from apps.common.run_dir import RunDir

HISTORY_FILE = "history.csv"


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """The named Keras optimizer; `clip_norm` > 0 sets its `global_clipnorm`."""
    kwargs = {"learning_rate": config.learning_rate}
    if config.clip_norm > 0:
        kwargs["global_clipnorm"] = config.clip_norm
    optimizer = keras.optimizers.get({"class_name": config.optimizer, "config": kwargs})
    return optimizer


def standard_callbacks(
    config: TrainConfig, run_dir: RunDir, save_best: bool = True
) -> list[keras.callbacks.Callback]:
    """TensorBoard, BackupAndRestore (a killed run resumes at its last epoch), best-model
    checkpoint, TerminateOnNaN, a CSV history, and early stopping when asked for. The
    progress bar is Keras's own (`fit(verbose=1)`)."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.BackupAndRestore(str(run_dir.backup_dir), delete_checkpoint=False),
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
    return callbacks
