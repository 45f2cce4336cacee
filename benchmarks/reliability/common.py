"""What every kind of trial shares: running the suite's command lines in subprocesses
(optionally killed), fingerprints of run directories, the checks of a one-line error,
and the tally of trials that becomes the results file."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def environment(**extra: str) -> dict[str, str]:
    """The environment of a suite command: the repository importable, TensorFlow quiet."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONUNBUFFERED="1", KERAS_BACKEND="tensorflow")  # fmt: skip
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


@dataclasses.dataclass
class Finished:
    """A finished (or killed) command."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def run(
    module: str,
    argv: Sequence[str],
    *,
    timeout: float = 900,
    kill_after_s: float | None = None,
    inject: tuple[Sequence[Path], int, Path | None] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
) -> Finished:
    """`python -m module argv...` in a subprocess. `kill_after_s`: SIGKILL it after that
    many seconds (if still running). `inject` = (watched folders, N, log): run it under
    `benchmarks.reliability.inject`, which kills it at its N-th write there (0: never)
    and logs the writes."""
    command = [sys.executable, "-m", module, *argv]
    if inject is not None:
        folders, kill_at, log = inject
        wrapper = [sys.executable, "-m", "benchmarks.reliability.inject", "--kill-at", str(kill_at)]
        for folder in folders:
            wrapper += ["--watch", str(folder)]
        if log is not None:
            wrapper += ["--log", str(log)]
        command = [*wrapper, "--", module, *argv]
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env or environment(), cwd=cwd, text=True,
                               errors="replace")  # fmt: skip
    try:
        if kill_after_s is not None:
            try:
                stdout, stderr = process.communicate(timeout=kill_after_s)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                stdout, stderr = process.communicate()
        else:
            stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        stderr += f"\n[reliability: timed out after {timeout:.0f} s]"
    return Finished(command, process.returncode, stdout, stderr, time.monotonic() - start)


def fingerprint(folder: Path) -> dict[str, str]:
    """{relative path: sha256 of a file, or "folder"} of everything under `folder` ({} if
    it does not exist): equal fingerprints, an unchanged folder."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    prints = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        prints[key] = "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return prints


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs between two fingerprints, e.g. ["+config.json", "~metrics.json"]."""
    added = [f"+{key}" for key in after if key not in before]
    removed = [f"-{key}" for key in before if key not in after]
    changed = [f"~{key}" for key in before if key in after and before[key] != after[key]]
    return added + removed + changed


def error_problem(finished: Finished, names: Sequence[str] = ()) -> str | None:
    """None when `finished` failed as a bad input must: exit status 2, its last stderr
    line one "error: ..." naming each of `names` (a file, an option), no traceback;
    else what is wrong."""
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if "Traceback" in finished.stderr:
        return "traceback: " + (lines[-1][:200] if lines else "")
    if finished.returncode != 2:
        return f"exit status {finished.returncode}" + (f": {lines[-1][:200]}" if lines else "")
    if len(errors) != 1 or lines[-1] != errors[0]:
        return f"not one final error line: {lines[-3:]}"
    missing = [name for name in names if name not in errors[0]]
    if missing:
        return f"the error does not name {missing}: {errors[0][:300]}"
    return None


def history_epochs(run_dir: Path) -> list[int]:
    """The epoch column of a run's history.csv ([] without one)."""
    path = Path(run_dir) / "history.csv"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [int(line.split(",", 1)[0]) for line in lines if line.strip()]


def read_json(path: Path) -> dict:
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def keras_weights(path: Path) -> dict[str, np.ndarray]:
    """Every array of a `.keras` file's weights, by its HDF5 path (h5py only: no
    TensorFlow in the campaign's own process)."""
    import h5py

    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(data), "r") as weights:
        weights.visititems(
            lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
        )
    return arrays


def weights_differ(first: Path, second: Path) -> str | None:
    """None when two `.keras` files hold bit-equal weights; else the first difference."""
    a, b = keras_weights(first), keras_weights(second)
    if sorted(a) != sorted(b):
        return f"different weights: {sorted(set(a) ^ set(b))[:3]}"
    for name in a:
        if a[name].shape != b[name].shape or not np.array_equal(a[name], b[name]):
            gap = np.max(np.abs(a[name].astype(float) - b[name].astype(float))) if a[name].shape == b[name].shape else None
            return f"{name} differs (max |difference| {gap})"
    return None


@dataclasses.dataclass
class Trial:
    """One trial: what was tried on what, whether what must hold held, and how."""

    kind: str  # e.g. "kill", "fuzz_files", "serving"
    subject: str  # an app, a reader, an export
    held: bool
    detail: str

    def line(self) -> str:
        return f"{'held' if self.held else 'FAILED'}  {self.kind} {self.subject}: {self.detail}"


@dataclasses.dataclass
class Tally:
    trials: list[Trial] = dataclasses.field(default_factory=list)
    log: io.TextIOBase | None = None

    def add(self, trial: Trial) -> Trial:
        self.trials.append(trial)
        if self.log is not None:
            print(trial.line(), file=self.log, flush=True)
        return trial

    def figures(self) -> dict:
        """Flat keys: `<kind>_<subject>_trials`, `_held`, and `_failures` (the failed
        trials' details) where any failed; `<kind>_all_trials` and `_held` sum a kind."""
        figures: dict = {}
        for trial in self.trials:
            for prefix in (f"{trial.kind}_{trial.subject}", f"{trial.kind}_all"):
                figures[f"{prefix}_trials"] = figures.get(f"{prefix}_trials", 0) + 1
                figures[f"{prefix}_held"] = figures.get(f"{prefix}_held", 0) + int(trial.held)
            if not trial.held:
                figures.setdefault(f"{trial.kind}_{trial.subject}_failures", []).append(trial.detail[:500])
        return figures

    @property
    def failed(self) -> list[Trial]:
        return [trial for trial in self.trials if not trial.held]
