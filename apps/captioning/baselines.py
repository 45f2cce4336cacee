"""The two baselines every evaluation scores like the model:

- the most frequent training caption, written for every image (ties between equally
  frequent captions, e.g. all unique, go to the caption of the most frequent words: the
  highest mean log frequency of its tokens in the training captions);
- nearest-neighbour retrieval: the first reference caption of the training image whose
  encoder image vector is closest (cosine) to the image's.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import numpy as np

from apps.captioning.ptb_tokenizer import ptb_tokenize


def most_frequent_caption(training_references: Sequence[Sequence[str]]) -> str:
    captions = [caption for references in training_references for caption in references]
    if not captions:
        raise ValueError("no training captions")
    tokenized = [ptb_tokenize(caption) for caption in captions]
    counts = collections.Counter(tokenized)
    words = collections.Counter(word for caption in tokenized for word in caption.split())
    total = sum(words.values())

    def typicality(caption: str) -> float:
        tokens = caption.split()
        return sum(math.log(words[word] / total) for word in tokens) / max(len(tokens), 1)

    best = max(counts, key=lambda caption: (counts[caption], typicality(caption), caption))
    # The raw caption of that normal form (first occurrence), as a model would write it.
    return captions[tokenized.index(best)]


def nearest_neighbour_captions(
    train_vectors: np.ndarray,
    training_references: Sequence[Sequence[str]],
    query_vectors: np.ndarray,
    batch_size: int = 1024,
) -> list[str]:
    """For each query image vector, the first reference of the closest training image."""
    train = _normalised(train_vectors)
    captions = []
    for begin in range(0, len(query_vectors), batch_size):
        query = _normalised(query_vectors[begin : begin + batch_size])
        nearest = np.argmax(query @ train.T, axis=1)
        captions.extend(training_references[int(index)][0] for index in nearest)
    return captions


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32).reshape(len(vectors), -1)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
