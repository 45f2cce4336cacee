"""SavedModel export into TF Serving version folders, and loading exports back."""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf

from apps.common.run_dir import RunDir


def export_module(module: tf.Module, run_dir: RunDir, signatures: dict) -> Path:
    """Saves `module` with `signatures` as export/<next version>/ and returns the path."""
    path = run_dir.next_export_dir()
    tf.saved_model.save(module, str(path), signatures=signatures)
    logging.info("exported SavedModel to %s (signatures: %s)", path, sorted(signatures))
    return path


def load_export(path: str | Path):
    """Loads a SavedModel. Imports tensorflow_text first so that exports whose tokenizer
    runs in the graph (SentencePiece ops) load in a fresh process."""
    import tensorflow_text  # noqa: F401  (registers the custom ops the graph needs)

    path = Path(path)
    if (path / "saved_model.pb").exists():
        return tf.saved_model.load(str(path))
    versions = sorted(int(p.name) for p in path.glob("*") if p.name.isdigit())
    if versions:
        return tf.saved_model.load(str(path / str(versions[-1])))
    raise FileNotFoundError(f"{path}: not a SavedModel or a folder of SavedModel versions")
