"""Loading a run's trained model back: the best checkpoint, else the final one.

Loaded models compute in float32 by default, whatever precision trained them: the weights
of a mixed-precision run are float32, and its evaluation, predictions and exports are then
those of the trained weights, exact and the same on every machine (a bfloat16 export would
also run emulated, slowly, on a CPU without bfloat16 units).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import keras

import layers
from apps.common.precision import dtype_policy
from apps.common.run_dir import RunDir

CHECKPOINT_NAMES = ("best.keras", "final.keras")


def checkpoint_path(run_dir: RunDir) -> Path:
    """`run_dir`'s best checkpoint, else its final one; FileNotFoundError if training
    wrote none."""
    for name in CHECKPOINT_NAMES:
        path = run_dir.checkpoint_dir / name
        if path.exists():
            return path
    raise FileNotFoundError(f"{run_dir.checkpoint_dir}: no checkpoint; run `train` first")


def load_checkpoint(
    run_dir: RunDir, compile: bool = False, precision: str | None = "float32"
) -> keras.Model:
    """The model of `run_dir`'s best checkpoint (else its final one), loaded by
    `load_model_file`. The app's own layers must be registered first (import its model
    module)."""
    return load_model_file(checkpoint_path(run_dir), compile=compile, precision=precision)


def load_model_file(
    path: str | Path, compile: bool = False, precision: str | None = "float32"
) -> keras.Model:
    """A saved `.keras` model, loaded with Keras's `safe_mode` (no code runs from the
    file), its layers computing in `precision` (default float32; None: as saved). Layers
    saved under a mixed policy (`mixed_bfloat16`, `mixed_float16`) are rebuilt under
    `precision`; layers saved in float32 (a mixed model's float32 outputs) stay so."""
    layers.register_all()
    path = Path(path)
    if precision is None:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    with _in_precision(path, precision) as patched, dtype_policy(precision):
        return keras.saving.load_model(patched, compile=compile, safe_mode=True)


def _with_policy(node, precision: str):
    """`node` (a saved Keras config) with every mixed dtype policy replaced by `precision`."""
    if isinstance(node, list):
        return [_with_policy(item, precision) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") == "DTypePolicy" and _mixed(node.get("config", {}).get("name")):
        return {**node, "config": {**node["config"], "name": precision}}
    return {
        key: precision if key == "dtype" and _mixed(value) else _with_policy(value, precision)
        for key, value in node.items()
    }


def _mixed(name) -> bool:
    return isinstance(name, str) and name.startswith("mixed_")


@contextlib.contextmanager
def _in_precision(path: Path, precision: str) -> Iterator[Path]:
    """`path` itself when its config already computes in `precision`, else a temporary
    copy whose config does."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        patched = _with_policy(config, precision)
        if patched == config:
            yield path
            return
        with tempfile.TemporaryDirectory(prefix="checkpoint-") as folder:
            copy = Path(folder) / path.name
            with zipfile.ZipFile(copy, "w") as target:
                for item in archive.infolist():
                    if item.filename == "config.json":
                        target.writestr(item, json.dumps(patched))
                    else:
                        with archive.open(item) as source, target.open(item, "w") as sink:
                            shutil.copyfileobj(source, sink)
            yield copy


def save_checkpoint(model: keras.Model, path: str | Path) -> Path:
    """`model.save(path)` through a temporary file renamed over `path`: a process killed
    while saving leaves the previous checkpoint whole, never a part of one."""
    path = Path(path)
    temporary = path.with_name(f".tmp{os.getpid()}-{path.name}")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
