"""Ensembles of trained sentiment runs: the mean of their positive-class probabilities.

    python -m apps.sentiment ensemble --members RUN_A RUN_B ... --run-dir ENSEMBLE
    python -m apps.sentiment evaluate|predict|export --run-dir ENSEMBLE

Each member keeps its own tokeniser, vocabulary and model (words and SentencePiece
members mix freely); the ensemble's run directory is described in apps/common/ensemble.py.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from apps.sentiment.export import SentimentServer


class EnsembleServer(tf.Module):
    """`serve(texts)` as `SentimentServer.serve`, with `probability` the mean of the
    members' probabilities; `num_tokens` is the first member's count."""

    def __init__(self, members: list[SentimentServer]):
        super().__init__(name="sentiment_ensemble")
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(self, texts):
        outputs = [member.serve(texts) for member in self.members]
        probability = tf.add_n([output["probability"] for output in outputs]) / len(outputs)
        return {"probability": probability, "num_tokens": outputs[0]["num_tokens"]}


def probabilities(server, texts: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """`server.serve` over raw texts in batches of similar length (little padding);
    the probabilities come back in the order of `texts`."""
    order = np.argsort([len(text) for text in texts], kind="stable")
    result = np.empty(len(texts), np.float32)
    for start in range(0, len(texts), batch_size):
        index = order[start : start + batch_size]
        batch = tf.constant([texts[i] for i in index], tf.string)
        result[index] = server.serve(batch)["probability"].numpy()
    return result


def evaluate_members(ensemble: EnsembleServer, texts: np.ndarray, labels: np.ndarray) -> dict:
    """Test accuracy of each member and of the mean of their probabilities."""
    member_probabilities = [probabilities(member, texts) for member in ensemble.members]
    labels = np.asarray(labels, np.float64)
    mean = np.mean(member_probabilities, axis=0).astype(np.float64)

    def accuracy(probability):  # Keras's binary accuracy: positive when above 0.5
        return float(np.mean((probability > 0.5) == (labels > 0.5)))

    clipped = np.clip(mean, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    return {
        "test_accuracy": accuracy(mean),
        "test_loss": float(loss),
        "member_test_accuracies": [accuracy(p) for p in member_probabilities],
        "test_examples": len(texts),
    }
