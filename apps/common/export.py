"""SavedModel export into TF Serving version folders, and loading exports back."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import tensorflow as tf

from apps.common.run_dir import RunDir


def export_module(module: tf.Module, run_dir: RunDir, signatures: dict) -> Path:
    """Saves `module` with `signatures` as export/<next version>/ (complete or not at all)
    and returns the path."""
    path = run_dir.write_export(
        lambda folder: tf.saved_model.save(module, str(folder), signatures=signatures)
    )
    logging.info("exported SavedModel: %s (signatures: %s)", path, sorted(signatures))
    return path


class _Owned:
    """A function of a loaded SavedModel that keeps the loaded object alive: restored
    functions reach their variables through weak references, so `load_export(path).fn(x)`
    would otherwise call `fn` after its variables were deleted."""

    def __init__(self, function: Any, owner: Any):
        self._function = function
        self._owner = owner

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._function, name)


class _OwnedSignatures(Mapping):
    def __init__(self, signatures: Mapping, owner: Any):
        self._signatures = signatures
        self._owner = owner

    def __getitem__(self, name: str) -> _Owned:
        return _Owned(self._signatures[name], self._owner)

    def __iter__(self) -> Iterator[str]:
        return iter(self._signatures)

    def __len__(self) -> int:
        return len(self._signatures)


class LoadedExport:
    """A loaded SavedModel whose functions, signatures and sub-objects keep it alive.

    Attributes read through it are those of the object `tf.saved_model.load` returned
    (`loaded`): `load_export(path).tag(...)` and
    `load_export(path).signatures["serving_default"](...)` are safe one-liners.
    """

    def __init__(self, loaded: Any, path: Path, owner: Any = None):
        self.loaded = loaded
        self.path = path
        self._owner = loaded if owner is None else owner

    @property
    def signatures(self) -> Mapping:
        return _OwnedSignatures(self.loaded.signatures, self._owner)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.loaded, name)
        if callable(value):
            return _Owned(value, self._owner)
        if isinstance(value, tf.__internal__.tracking.AutoTrackable):  # a restored sub-object
            return LoadedExport(value, self.path, self._owner)
        return value

    def __repr__(self) -> str:
        return f"LoadedExport({str(self.path)!r})"


def load_export(path: str | Path) -> LoadedExport:
    """Loads a SavedModel (a version folder, or a folder of them: the latest version).
    Imports tensorflow_text first so that exports whose tokenizer runs in the graph
    (SentencePiece ops) load in a fresh process."""
    import tensorflow_text  # noqa: F401  (registers the custom ops the graph needs)

    path = Path(path)
    if not (path / "saved_model.pb").exists():
        versions = sorted(int(p.name) for p in path.glob("*") if p.name.isdigit())
        if not versions:
            raise FileNotFoundError(f"{path}: not a SavedModel or a folder of SavedModel versions")
        path = path / str(versions[-1])
    return LoadedExport(tf.saved_model.load(str(path)), path)
