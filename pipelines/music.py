"""Polyphonic music in the JSB Chorales JSON layout (Boulanger-Lewandowski et al. 2012)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipelines._io import parse_json, read_text_file
from pipelines.errors import DataFormatError

LOWEST_PITCH = 21  # A0, the lowest piano key
NUM_PITCHES = 88


def read_jsb(path: str) -> dict[str, list[np.ndarray]]:
    """Reads ``{"train": [...], "valid": [...], ...}``: sequences of steps of MIDI pitches.

    Each step is a list of active MIDI pitches in ``21..108`` (possibly empty).

    Returns:
        ``{split: [piano roll float32 [T, 88]]}``, column ``p - 21`` set for pitch ``p``.
    """
    data = parse_json(path, read_text_file(path))
    if not isinstance(data, dict) or not data:
        raise DataFormatError(path, None, 'expected an object of splits, e.g. {"train": [...]}')
    splits: dict[str, list[np.ndarray]] = {}
    for split, sequences in data.items():
        if not isinstance(sequences, list):
            raise DataFormatError(path, None, f"split {split!r} is not a list of sequences")
        rolls = []
        for index, sequence in enumerate(sequences):
            if not isinstance(sequence, list) or not sequence:
                raise DataFormatError(
                    path, None, f"{split}[{index}] is not a non-empty list of steps"
                )
            roll = np.zeros((len(sequence), NUM_PITCHES), dtype=np.float32)
            for step, pitches in enumerate(sequence):
                if not isinstance(pitches, list):
                    raise DataFormatError(
                        path, None, f"{split}[{index}][{step}] is not a list of pitches"
                    )
                for pitch in pitches:
                    if (
                        not isinstance(pitch, (int, float))
                        or not (LOWEST_PITCH <= pitch < LOWEST_PITCH + NUM_PITCHES)
                        or int(pitch) != pitch
                    ):
                        raise DataFormatError(
                            path,
                            None,
                            f"{split}[{index}][{step}]: pitch {pitch!r} is not a MIDI note in "
                            f"{LOWEST_PITCH}..{LOWEST_PITCH + NUM_PITCHES - 1}",
                        )
                    roll[step, int(pitch) - LOWEST_PITCH] = 1.0
            rolls.append(roll)
        splits[split] = rolls
    return splits


def next_frame_dataset(rolls: list[np.ndarray]) -> tf.data.Dataset:
    """``(frames[:-1], frames[1:])`` pairs for next-step prediction, float32 ``[T-1, 88]``."""
    usable = [roll for roll in rolls if len(roll) >= 2]
    lengths = np.array([len(roll) - 1 for roll in usable], dtype=np.int64)
    inputs = tf.RaggedTensor.from_row_lengths(np.concatenate([r[:-1] for r in usable]), lengths)
    targets = tf.RaggedTensor.from_row_lengths(np.concatenate([r[1:] for r in usable]), lengths)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    return dataset.map(
        lambda x, y: (
            x.to_tensor() if isinstance(x, tf.RaggedTensor) else x,
            y.to_tensor() if isinstance(y, tf.RaggedTensor) else y,
        )
    )
