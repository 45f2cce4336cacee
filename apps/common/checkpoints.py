"""Loading a run's trained model back: the best checkpoint, else the final one."""

from __future__ import annotations

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
