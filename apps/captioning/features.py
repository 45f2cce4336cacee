"""The frozen encoder's feature cache: its output for every image of a split, computed
once and kept in RUN_DIR/cache (reused on resume and by evaluate), keyed by the images
and a digest of the encoder's weights."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import keras
import numpy as np

logger = logging.getLogger(__name__)


def weights_digest(model: keras.Model) -> str:
    digest = hashlib.sha1()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:12]


def encoder_features(
    encoder: keras.Model, kind: str, images: np.ndarray, cache_dir: Path, split_key: str,
    batch_size: int = 64,
) -> tuple[np.ndarray, float]:
    """`encoder`'s output `kind` ("grid" or "vector") for `images` uint8 `[N, S, S, 3]`,
    as float16 (memory-mapped from the cache), and the seconds spent computing it (0 when
    it was cached)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"features-{split_key}-{kind}-{weights_digest(encoder)}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r"), 0.0
    started = time.perf_counter()
    output = 0 if kind == "grid" else 1
    shape = tuple(int(size) for size in encoder.outputs[output].shape[1:])
    temporary = path.with_suffix(".tmp.npy")
    stored = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16, shape=(len(images), *shape))
    for begin in range(0, len(images), batch_size):
        batch = np.asarray(images[begin : begin + batch_size])
        stored[begin : begin + len(batch)] = np.asarray(encoder(batch, training=False)[output], np.float16)
    stored.flush()
    del stored
    os.replace(temporary, path)
    seconds = time.perf_counter() - started
    logger.info("encoder features (%s %s) of %d images cached in %s (%.1f s)", kind, shape, len(images), path, seconds)
    return np.load(path, mmap_mode="r"), seconds
