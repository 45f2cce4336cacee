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
    return callbacks
