"""Token streams for language models: truncated-BPTT windows and independent windows.

A language-model corpus is one long sequence of token ids. Truncated backpropagation
through time (Williams & Peng 1990; the batching of Zaremba et al. 2014) cuts it into
``batch_size`` contiguous, parallel streams and walks along all of them at once in
windows of ``bptt`` steps: window ``w`` holds steps ``w * bptt ... (w + 1) * bptt - 1``
of every stream, so a stateful model that carries its hidden state from one window to
the next sees each stream as one uninterrupted text, while gradients stop at window
edges.

Layout (``N`` tokens, ``B`` streams, ``L`` targets per stream)::

    stream b, step t:   input  = ids[b * L + t]
                        target = ids[b * L + t + 1]

Consecutive streams overlap by one token (the last target of stream ``b`` is the first
input of stream ``b + 1``), so every token except the first is a target exactly once.
For training, ``drop_remainder=True`` keeps whole windows only (``L = (N - 1) // B``
rounded down to a multiple of ``bptt`` targets are used). For evaluation,
``drop_remainder=False`` pads the tail with id 0 and returns per-step weights that are 1
for real targets and 0 for padding: the weights sum to ``N - 1``, so a metric summed
with them covers the whole split.

``independent_windows`` is the stateless alternative: chunks of ``bptt`` targets, each
with its own preceding input, shuffled and batched; a model trained on them starts every
window from a zero state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class StreamLayout:
    """How a corpus of ``num_tokens`` ids is laid out as parallel streams.

    Attributes:
        num_tokens: ids in the corpus.
        batch_size: number of parallel streams.
        bptt: steps per window.
        stream_length: targets per stream (``L``).
        num_windows: windows per pass over the corpus.
        num_targets: targets with weight 1 in one pass (``N - 1`` without
            ``drop_remainder``).
    """

    num_tokens: int
    batch_size: int
    bptt: int
    stream_length: int
    num_windows: int
    num_targets: int


def _check_positive(name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def stream_layout(
    num_tokens: int, batch_size: int, bptt: int, drop_remainder: bool = True
) -> StreamLayout:
    """The stream layout of ``num_tokens`` ids; see the module docstring."""
    _check_positive("batch_size", batch_size)
    _check_positive("bptt", bptt)
    num_predictions = num_tokens - 1
    if drop_remainder:
        stream_length = num_predictions // batch_size
        num_windows = stream_length // bptt
        if num_windows == 0:
            raise ValueError(
                f"corpus too short for truncated BPTT: {num_tokens} tokens cannot fill one "
                f"window of batch_size={batch_size} streams x bptt={bptt} steps (needs at "
                f"least {batch_size * bptt + 1}); lower batch_size or bptt"
            )
        num_targets = num_windows * bptt * batch_size
    else:
        if num_predictions < 1:
            raise ValueError(f"a stream needs at least 2 tokens, got {num_tokens}")
        stream_length = math.ceil(num_predictions / batch_size)
        num_windows = math.ceil(stream_length / bptt)
        num_targets = num_predictions
    return StreamLayout(num_tokens, batch_size, bptt, stream_length, num_windows, num_targets)


def stream_arrays(
    ids: Sequence[int] | np.ndarray, batch_size: int, bptt: int, drop_remainder: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The windows of ``ids`` as arrays.

    Returns:
        ``(inputs, targets, weights)``, each ``[num_windows, batch_size, bptt]``;
        ``inputs`` and ``targets`` int32, ``weights`` float32 (0 on padding).
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be one sequence (rank 1), got shape {ids.shape}")
    layout = stream_layout(len(ids), batch_size, bptt, drop_remainder)
    length = layout.stream_length
    padded_length = layout.num_windows * bptt
    # Row b of `positions` holds the corpus index of stream b's inputs.
    positions = np.arange(batch_size)[:, None] * length + np.arange(padded_length)[None, :]
    # A step is real when it lies inside its stream and its target inside the corpus
    # (always true with drop_remainder, where padded_length <= length).
    valid = (np.arange(padded_length)[None, :] < length) & (positions + 1 < len(ids))
    padded = np.concatenate([ids, np.zeros(batch_size * padded_length + 1, ids.dtype)])
    inputs = np.where(valid, padded[positions], 0).astype(np.int32)
    targets = np.where(valid, padded[positions + 1], 0).astype(np.int32)
    weights = valid.astype(np.float32)

    def windows(array: np.ndarray) -> np.ndarray:
        # [B, W * T] -> [W, B, T]
        return np.ascontiguousarray(
            array.reshape(batch_size, layout.num_windows, bptt).transpose(1, 0, 2)
        )

    return windows(inputs), windows(targets), windows(weights)


def stream_windows(
    ids: Sequence[int] | np.ndarray,
    batch_size: int,
    bptt: int,
    drop_remainder: bool = True,
    with_weights: bool = False,
) -> tf.data.Dataset:
    """Consecutive truncated-BPTT windows over ``batch_size`` parallel streams, in order.

    Element ``w`` is ``(inputs, targets)`` (or ``(inputs, targets, weights)`` with
    ``with_weights``) of shape ``[batch_size, bptt]``; the dataset must not be shuffled,
    since window ``w + 1`` continues window ``w`` in every stream.
    """
    inputs, targets, weights = stream_arrays(ids, batch_size, bptt, drop_remainder)
    tensors = (inputs, targets, weights) if with_weights else (inputs, targets)
    return tf.data.Dataset.from_tensor_slices(tensors)


def independent_windows(
    ids: Sequence[int] | np.ndarray,
    batch_size: int,
    bptt: int,
    shuffle: bool = True,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Independent windows for stateless training: the corpus cut into chunks of
    ``bptt`` targets (``inputs = ids[s:s + bptt]``, ``targets = ids[s + 1:s + bptt + 1]``,
    ``s`` a multiple of ``bptt``), reshuffled every pass when ``shuffle``, batched
    ``batch_size`` at a time (whole batches only). Each pass covers the same targets as
    ``stream_windows`` up to the remainder."""
    _check_positive("batch_size", batch_size)
    _check_positive("bptt", bptt)
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be one sequence (rank 1), got shape {ids.shape}")
    num_chunks = (len(ids) - 1) // bptt
    if num_chunks < batch_size:
        raise ValueError(
            f"corpus too short: {len(ids)} tokens give {num_chunks} windows of bptt={bptt}, "
            f"fewer than one batch of {batch_size}; lower batch_size or bptt"
        )
    starts = np.arange(num_chunks)[:, None] * bptt + np.arange(bptt)[None, :]
    inputs = ids[starts].astype(np.int32)
    targets = ids[starts + 1].astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if shuffle:
        dataset = dataset.shuffle(num_chunks, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=True)


__all__ = [
    "StreamLayout",
    "independent_windows",
    "stream_arrays",
    "stream_layout",
    "stream_windows",
]
