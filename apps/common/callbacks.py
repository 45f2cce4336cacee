"""The callbacks every training run gets."""

from __future__ import annotations

import keras

from apps.common.config import TrainConfig
from apps.common.run_dir import RunDir

HISTORY_FILE = "history.csv"
_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "bleu", "cider")


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
    return max(values) if monitor_mode(config) == "max" else min(values)


def monitor_mode(config: TrainConfig) -> str:
    """"min" or "max": `monitor_mode`, or for `auto` whether `monitor` names a score
    that grows (accuracy, F1, BLEU...)."""
    if config.monitor_mode != "auto":
        return config.monitor_mode
    return "max" if any(key in config.monitor for key in _HIGHER_IS_BETTER) else "min"


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
                mode=monitor_mode(config),
                save_best_only=True,
                # A resumed run keeps the best epoch of its earlier part.
                initial_value_threshold=best_so_far(config, run_dir),
            )
        )
    if config.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=config.monitor,
                mode=monitor_mode(config),
                patience=config.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    callbacks.extend(before_backup or [])
    callbacks.append(
        keras.callbacks.BackupAndRestore(str(run_dir.backup_dir), delete_checkpoint=False)
    )
    return callbacks
