"""The run directory: everything one run produces, in one place.

runs/<app>/<timestamp>/
    run.json         the app that made the run ({"app": "tagging"})
    config.json      resolved configuration
    vocab/           vocabularies and tokenizer models used by training
    checkpoints/     best model (`best.keras`)
    backup/          BackupAndRestore state: rerunning resumes from here
    logs/            TensorBoard event files
    metrics.json     training figures (merged across commands), and under "evaluations"
                     one record per (split, data, checkpoint) that `evaluate` scored
    plots/           PNG figures
    export/<n>/      SavedModels in TF Serving version folders
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apps.common.config import write_atomically

RUN_FILE = "run.json"


def recorded_app(root: str | Path) -> str | None:
    """The app that made the run in `root` (None for a new folder, or for runs made before
    run.json existed)."""
    path = Path(root) / RUN_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("app")


def check_app(root: str | Path, app: str) -> None:
    """ValueError when the run in `root` was made by another app than `app` (reads, never
    writes: the command line checks it before any work)."""
    recorded = recorded_app(root)
    if recorded is not None and recorded != app:
        raise ValueError(f"{root} is a {recorded} run, not a {app} run")


class RunDir:
    """Paths of one run; creates the folders it hands out."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, app: str, run_dir: str | Path = "", base: str | Path = "runs") -> RunDir:
        """`run_dir` if given (an existing one is resumed), else runs/<app>/<timestamp>.
        An existing run must be one of `app`'s (ValueError otherwise); a new one records
        `app` in its run.json."""
        if not run_dir:
            run_dir = Path(base) / app / datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        check_app(run_dir, app)
        run = cls(run_dir)
        if run.app is None and not run.config_path.exists():  # a new run, not an old one
            write_atomically(run.root / RUN_FILE, json.dumps({"app": app}) + "\n")
        return run

    @property
    def app(self) -> str | None:
        """The app that made the run (None for runs made before run.json existed)."""
        return recorded_app(self.root)

    def check_app(self, app: str) -> None:
        """ValueError when the run was made by another app than `app`."""
        check_app(self.root, app)

    def _sub(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.json"

    @property
    def vocab_dir(self) -> Path:
        return self._sub("vocab")

    @property
    def checkpoint_dir(self) -> Path:
        return self._sub("checkpoints")

    @property
    def best_model_path(self) -> Path:
        return self.checkpoint_dir / "best.keras"

    @property
    def backup_dir(self) -> Path:
        return self._sub("backup")

    @property
    def log_dir(self) -> Path:
        return self._sub("logs")

    @property
    def plot_dir(self) -> Path:
        return self._sub("plots")

    @property
    def export_root(self) -> Path:
        return self._sub("export")

    def next_export_dir(self) -> Path:
        """A new TF Serving version folder: export/1, export/2, ..."""
        versions = [int(p.name) for p in self.export_root.iterdir() if p.name.isdigit()]
        return self.export_root / str(max(versions, default=0) + 1)

    def write_export(self, save: Callable[[Path], Any]) -> Path:
        """Calls `save(folder)` to write a SavedModel into a temporary folder of export/,
        then renames it to the next version folder: TF Serving and `latest_export_dir`
        never see a partial export (a killed export leaves only a temporary folder, which
        the next export removes). Returns the version folder."""
        for partial in self.export_root.glob(".partial-*"):
            if not _process_alive(partial.name.rsplit("-", 1)[-1]):
                shutil.rmtree(partial, ignore_errors=True)
        temporary = self.export_root / f".partial-{os.getpid()}"
        shutil.rmtree(temporary, ignore_errors=True)
        save(temporary)
        path = self.next_export_dir()
        os.rename(temporary, path)
        return path

    def latest_export_dir(self) -> Path:
        versions = [int(p.name) for p in self.export_root.iterdir() if p.name.isdigit()]
        if not versions:
            raise FileNotFoundError(
                f"{self.export_root}: no exported model; run the app's `export` command first"
            )
        return self.export_root / str(max(versions))

    def read_metrics(self) -> dict[str, Any]:
        if not self.metrics_path.exists():
            return {}
        return json.loads(self.metrics_path.read_text(encoding="utf-8"))

    def write_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Merges `metrics` into metrics.json (written atomically) and returns the merged
        content."""
        merged = self.read_metrics()
        merged.update({key: _plain(value) for key, value in metrics.items()})
        write_atomically(self.metrics_path, json.dumps(merged, indent=2, sort_keys=True) + "\n")
        return merged

    def checkpoint_id(self) -> str:
        """Names the weights an evaluation scored: the checkpoint file and its time, e.g.
        "best.keras@2026-12-07T10:00:00.123456" ("none" before training)."""
        for name in ("best.keras", "final.keras"):
            path = self.root / "checkpoints" / name
            if path.exists():
                stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9)
                return f"{name}@{stamp.isoformat()}"
        return "none"

    def write_evaluation(
        self, split: str, data: str, metrics: dict[str, Any], checkpoint: str | None = None
    ) -> dict[str, Any]:
        """Records one evaluation in metrics.json under "evaluations", keyed by split, data
        (the files or dataset scored) and checkpoint, so that scoring another file or a
        retrained model never overwrites (or stands beside) other figures. Returns the
        merged metrics with this evaluation's figures on top."""
        checkpoint = checkpoint or self.checkpoint_id()
        key = f"{split} {data} {checkpoint}"
        record = {
            "split": split,
            "data": data,
            "checkpoint": checkpoint,
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            **{name: _plain(value) for name, value in metrics.items()},
        }
        evaluations = dict(self.read_metrics().get("evaluations", {}))
        evaluations[key] = record
        merged = self.write_metrics({"evaluations": evaluations})
        return {**merged, **record}


    def latest_evaluation(self, split: str) -> dict[str, Any] | None:
        """The most recent evaluation record of `split` (None if there is none)."""
        records = [
            record for record in self.read_metrics().get("evaluations", {}).values()
            if record.get("split") == split
        ]
        return max(records, key=lambda record: record["date"]) if records else None


class Snapshot:
    """What a run directory held before a command, to put it back when the command fails
    before its training committed an epoch: files and folders it made are removed, and
    run.json, config.json and metrics.json get their contents back (a folder it made is
    removed whole)."""

    RESTORED = ("run.json", "config.json", "metrics.json")

    def __init__(self, root: str | Path, existed: bool | None = None):
        self.root = Path(root)
        self.existed = self.root.exists() if existed is None else existed
        self.paths = set(self.root.rglob("*")) if self.existed else set()
        self.contents = {name: (self.root / name).read_bytes() for name in self.RESTORED
                         if self.existed and (self.root / name).is_file()}  # fmt: skip
        self.record = self._training_record()

    def _training_record(self) -> bytes | None:
        path = self.root / "backup" / "training_metadata.json"
        return path.read_bytes() if path.exists() else None

    def restore(self) -> bool:
        """Puts the folder back; False (and nothing changed) when an epoch was committed
        since the snapshot."""
        if not self.root.exists():
            return True
        if self._training_record() != self.record:
            return False
        if not self.existed:
            shutil.rmtree(self.root, ignore_errors=True)
            return True
        made = sorted(set(self.root.rglob("*")) - self.paths, key=lambda path: len(path.parts), reverse=True)
        for path in made:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        for name, content in self.contents.items():
            path = self.root / name
            if not path.is_file() or path.read_bytes() != content:
                write_atomically(path, content)
        return True


def _process_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _plain(value: Any) -> Any:
    """Numpy/TF scalars and arrays to JSON-serialisable Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "numpy"):
        return value.numpy().tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
