"""The training clock every app shares: wall and CPU time summed over the processes of a
resumed run, and the `--max-train-minutes` budget that it enforces."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import keras

from apps.common.config import write_atomically

CLOCK_FILE = "clock.json"  # in the run's backup folder, beside BackupAndRestore's state

logger = logging.getLogger(__name__)


class TrainingClock(keras.callbacks.Callback):
    """Wall-clock and CPU seconds of training (`fit`), summed over every process of a run.

    The totals are written to `path` at each epoch end, with BackupAndRestore's state, so
    a killed run that resumes from its last epoch counts the time of its earlier processes
    (the unfinished epoch of a killed process is lost with its weights, and not counted).
    The clocks are `time.monotonic` and `time.process_time` unless given (tests).
    With `minutes` > 0 the clock stops training once that much wall time has passed in
    all: checked after every batch, so a run overruns by at most one batch and the
    validation of the epoch it stops in (which is still checkpointed); a run resumed with
    its budget already spent stops at its first batch.
    """

    def __init__(
        self,
        path: Path,
        minutes: float = 0.0,
        wall_clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ):
        super().__init__()
        self.path = Path(path)
        self.seconds = 60.0 * minutes
        self.wall_clock, self.cpu_clock = wall_clock, cpu_clock
        self.previous = {"wall_s": 0.0, "cpu_s": 0.0}
        self.start, self.cpu_start = self.wall_clock(), self.cpu_clock()
        self.stopped = False

    def on_train_begin(self, logs=None):
        self.previous = {**self.previous, **earlier_totals(self.path)}
        self.start, self.cpu_start = self.wall_clock(), self.cpu_clock()

    def totals(self) -> tuple[float, float]:
        """(wall-clock seconds, CPU seconds of all threads) trained so far."""
        return (
            self.previous["wall_s"] + self.wall_clock() - self.start,
            self.previous["cpu_s"] + self.cpu_clock() - self.cpu_start,
        )

    def _check(self) -> None:
        if self.seconds > 0 and not self.stopped and self.totals()[0] > self.seconds:
            logger.info("time limit of %.1f minutes reached: stopping", self.seconds / 60)
            self.stopped = True
            self.model.stop_training = True

    def on_train_batch_begin(self, batch, logs=None):
        self._check()  # a run resumed after its budget was spent

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        wall, cpu = self.totals()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps({"wall_s": wall, "cpu_s": cpu}) + "\n")


def earlier_totals(path: Path) -> dict:
    """The totals a run's earlier processes wrote (empty for a new run)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        totals = json.loads(path.read_text(encoding="utf-8"))
        return {key: float(totals[key]) for key in ("wall_s", "cpu_s") if key in totals}
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a training clock file ({error})") from error
