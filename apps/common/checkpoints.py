"""Loading a run's trained model back: the best checkpoint, else the final one."""

from __future__ import annotations

import os
from pathlib import Path

import keras

import layers
from apps.common.run_dir import RunDir

CHECKPOINT_NAMES = ("best.keras", "final.keras")


def load_checkpoint(run_dir: RunDir, compile: bool = False) -> keras.Model:
    """The model of `run_dir`'s best checkpoint (else its final one), loaded with Keras's
    `safe_mode` (no code runs from the file); FileNotFoundError if training wrote none.
    The app's own layers must be registered first (import its model module)."""
    layers.register_all()
    for name in CHECKPOINT_NAMES:
        path = run_dir.checkpoint_dir / name
        if path.exists():
            return keras.saving.load_model(path, compile=compile, safe_mode=True)
    raise FileNotFoundError(f"{run_dir.checkpoint_dir}: no checkpoint; run `train` first")


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
