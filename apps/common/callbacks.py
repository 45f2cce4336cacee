"""The callbacks every training run gets."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import keras

from apps.common.config import TrainConfig, write_atomically
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
    resume_epoch: int | None = None,
) -> list[keras.callbacks.Callback]:
    """TerminateOnNaN, a CSV history, TensorBoard, the best-model checkpoint, early
    stopping when asked for, then `before_backup` and BackupAndRestore (a killed run
    resumes at its last epoch, or at `resume_epoch`, see `AtomicBackupAndRestore`; last,
    so that it saves the state training goes on from).
    The progress bar is Keras's own (`fit(verbose=1)`)."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(run_dir.root / HISTORY_FILE), append=True),  # see resume_history
        keras.callbacks.TensorBoard(log_dir=str(run_dir.log_dir)),
    ]
    if save_best:
        callbacks.append(
            AtomicModelCheckpoint(
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
        AtomicBackupAndRestore(
            str(run_dir.backup_dir), resume_epoch=resume_epoch, delete_checkpoint=False
        )
    )
    return callbacks


# --------------------------------------------------------------------------- kill-safe state

BACKUP_RECORD = "training_metadata.json"  # BackupAndRestore's name for it


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose state survives a kill at any instant.

    Keras writes the weights, then the epoch record, each in place: a process killed
    between the two resumes with the next epoch's weights and repeats that epoch, and one
    killed while writing leaves a file that cannot be read. Here the weights of each
    backup go to a new file, renamed into place once complete, and the record, written
    atomically after it, names that file: the record is the commit. A kill before it
    leaves the previous record and the weights it names. Each record also names the
    backup before it (`previous`), whose weights file is kept (older ones are removed):
    the workers of a multi-worker run killed between their commits of an epoch hold
    backups one epoch apart, and resume together from the epoch all of them committed
    (`resume_epoch`, agreed by `train_model`). Runs backed up by Keras's callback
    (latest.weights.h5) resume as before.

    Args:
        backup_dir: where the backups go.
        resume_epoch: the completed epochs to resume from (this backup or the previous
            one; 0 without either: a new start); None: the last backup.
    """

    def __init__(self, backup_dir, resume_epoch: int | None = None, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.resume_epoch = resume_epoch

    def _save_model(self):
        folder = Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch{self._current_epoch}-batch{self._last_batch_seen}.weights.h5"
        temporary = folder / f".tmp{os.getpid()}.weights.h5"
        self.model.save_weights(str(temporary), overwrite=True)
        os.replace(temporary, folder / name)
        previous = read_backup_record(folder)
        if previous is not None:
            previous.pop("previous", None)
        record = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name,
                  "previous": previous}  # fmt: skip
        write_atomically(folder / BACKUP_RECORD, json.dumps(record))
        kept = {name, (previous or {}).get("weights")}
        for stale in folder.glob("*.weights.h5*"):
            if stale.name not in kept:
                stale.unlink(missing_ok=True)

    def _load_model(self):
        if not self.model.built:
            super()._load_model()  # Keras's error for an unbuilt model
        record = backup_generation(Path(self.backup_dir), self.resume_epoch)
        if record is None:
            return  # a new run (weights files without a record were never committed)
        weights = Path(self.backup_dir) / record.get("weights", "latest.weights.h5")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(weights))
        self.model._initial_epoch = record["epoch"]


def read_backup_record(folder: Path) -> dict | None:
    """The last committed backup record in `folder` (None: none yet)."""
    path = Path(folder) / BACKUP_RECORD
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def backup_generation(folder: Path, epoch: int | None) -> dict | None:
    """The record of the backup in `folder` after `epoch` completed epochs: the last one
    (`epoch` None or its own) or the one before it; None for a new start (no backup, or
    `epoch` 0); ValueError when neither backup is of `epoch`."""
    record = read_backup_record(folder)
    if record is None or epoch is None or record["epoch"] == epoch:
        return record
    previous = record.get("previous")
    if previous and previous["epoch"] == epoch:
        return previous
    if epoch == 0:
        return None
    raise ValueError(
        f"{folder}: no backup after epoch {epoch} to resume from (the last backup is after "
        f"epoch {record['epoch']}, the one before it after "
        f"{previous['epoch'] if previous else 'none'})"
    )


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` (of a file path without format fields) that
    writes each checkpoint to a temporary file and renames it over the last one: a kill
    while saving leaves the previous checkpoint whole."""

    def _save_model(self, epoch, batch, logs):
        final = self.filepath
        folder, name = os.path.split(final)
        self.filepath = os.path.join(folder, f".tmp{os.getpid()}-{name}")
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            temporary, self.filepath = self.filepath, final
        if os.path.exists(temporary):
            os.replace(temporary, final)


def resume_history(run_dir: RunDir, completed: int) -> None:
    """Keeps the first `completed` epochs of the run's CSV history (and its header).

    The history row of an epoch is written before its backup: a process killed between
    the two (or while writing the row) left a row of an epoch that the resumed process
    trains again. Dropping such rows before training keeps each epoch once."""
    path = run_dir.root / HISTORY_FILE
    if not path.exists():
        return
    if completed == 0:
        path.unlink()
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, width = rows[0], len(rows[0])
    kept = [row for row in rows[1:] if len(row) == width and row[0].isdigit() and int(row[0]) < completed]
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([header, *kept])  # the dialect of keras.callbacks.CSVLogger
    if buffer.getvalue() != text:
        write_atomically(path, buffer.getvalue())
