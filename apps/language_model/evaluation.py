"""Whole-split evaluation with the state carried: perplexity, nats and bits per token/char.

The split is laid out as `eval_batch_size` contiguous streams (pipelines.streams, no
remainder dropped: padded steps have weight 0), read window after window by a stateful
copy of the model, so every token but the first is scored once, given all tokens before
it in its stream; no window edge resets the state.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from apps.language_model.config import LanguageModelConfig
from apps.language_model.model import build_model, copy_weights, reset_states
from pipelines.streams import stream_arrays


def cross_entropy_metrics(
    total_nats: float, num_targets: int, num_chars: int | None = None
) -> dict:
    """Perplexity and friends from a summed negative log-likelihood (in nats)."""
    nats = total_nats / num_targets
    metrics = {
        "nats_per_token": nats,
        "bits_per_token": nats / math.log(2),
        "perplexity": math.exp(min(nats, 700.0)),
        "num_targets": int(num_targets),
    }
    if num_chars:
        metrics["nats_per_char"] = total_nats / num_chars
        metrics["bits_per_char"] = total_nats / num_chars / math.log(2)
    return metrics


def evaluate_ids(
    trained: keras.Model,
    config: LanguageModelConfig,
    vocab_size: int,
    ids: np.ndarray,
    num_chars: int | None = None,
    batch_size: int | None = None,
    bptt: int | None = None,
) -> dict:
    """Scores a whole split with `trained`'s weights; see the module docstring.

    `num_chars` (the characters of the split's text) adds nats and bits per character;
    for character tokens, pass None: per token is per character.
    """
    batch_size = batch_size or config.eval_batch_size
    bptt = bptt or config.eval_bptt
    batch_size = max(1, min(batch_size, len(ids) - 1))
    model = copy_weights(
        trained,
        build_model(config, vocab_size, batch_size, stateful=True, dtype_policy="float32"),
    )
    reset_states(model)
    inputs, targets, weights = stream_arrays(ids, batch_size, bptt, drop_remainder=False)

    @tf.function(reduce_retracing=True)
    def window_nats(x, y, w):
        logits = tf.cast(model(x, training=False), tf.float32)
        nats = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        return tf.reduce_sum(nats * w)

    start = time.time()
    total = 0.0
    for x, y, w in zip(inputs, targets, weights):
        total += float(window_nats(x, y, w))
    metrics = cross_entropy_metrics(total, int(weights.sum()), num_chars)
    metrics["eval_seconds"] = time.time() - start
    return metrics
