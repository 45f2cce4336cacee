"""apps/sentiment language-model pretraining: the loss against NumPy, no peeking at the
predicted token, weight transfer, and the two-stage `train` through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apps.common.plots import read_history
from apps.sentiment.__main__ import main
from apps.sentiment.config import SentimentConfig
from apps.sentiment.model import build_model
from apps.sentiment.pretrain import (
    LanguageModelLoss,
    build_language_model,
    next_tokens,
    previous_tokens,
    transfer,
)
from tests.apps.test_sentiment import TINY, write_data

VOCABULARY = 23


def tiny_config(**changes) -> SentimentConfig:
    values = dict(embedding_size=8, units=6, embedding_dropout=0.0, pretrain_sampled=5)
    values.update(changes)
    return SentimentConfig(**values)


def test_full_softmax_loss_equals_numpy():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 5, 4)).astype("float32")
    targets = np.array([[3, 1, 7, 0, 0], [2, 2, 2, 2, 9], [0, 0, 0, 0, 0]], np.int32)
    head = LanguageModelLoss(11, num_sampled=4)
    result = np.asarray(head([hidden, targets], training=False))
    kernel, bias = (np.asarray(w) for w in head.get_weights())
    logits = hidden @ kernel.T + bias
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for row in range(3):
        real = [t for t in range(5) if targets[row, t]]
        nll = [-log_probs[row, t, targets[row, t]] for t in real]
        assert result[row] == pytest.approx(np.mean(nll) if nll else 0.0, rel=1e-5, abs=1e-6)
    sampled = np.asarray(head([hidden, targets], training=True))  # sampled: finite, 0 without targets
    assert np.all(np.isfinite(sampled)) and sampled[2] == 0.0


def test_targets_are_the_neighbouring_tokens():
    ids = np.array([[5, 6, 7, 0, 0]], np.int32)
    np.testing.assert_array_equal(np.asarray(next_tokens(ids)), [[6, 7, 0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(previous_tokens(ids)), [[0, 5, 6, 0, 0]])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_no_direction_sees_the_token_it_predicts(cell):
    """Changing token k changes the forward losses only from step k-1 on and the backward
    losses only up to step k+1."""
    config = tiny_config(cell=cell)
    model = build_language_model(config, VOCABULARY)
    embedding, recurrent = model.get_layer("embedding"), model.get_layer("bidirectional_0")
    head = model.get_layer("softmax")

    def losses(ids):
        forward, backward = recurrent(embedding(ids), mask=embedding.compute_mask(ids))
        return (
            np.asarray(head.token_losses(forward, next_tokens(ids))),
            np.asarray(head.token_losses(backward, previous_tokens(ids))),
        )

    rng = np.random.default_rng(1)
    ids = rng.integers(2, VOCABULARY, size=(2, 9)).astype(np.int32)
    ids[1, 7:] = 0  # right padding
    k = 4
    changed = ids.copy()
    changed[:, k] = np.where(ids[:, k] == 2, 3, 2)
    (fw, bw), (fw2, bw2) = losses(ids), losses(changed)
    np.testing.assert_allclose(fw[:, : k - 1], fw2[:, : k - 1], rtol=1e-6)
    np.testing.assert_allclose(bw[:, k + 2 :], bw2[:, k + 2 :], rtol=1e-6)
    assert np.abs(fw[:, k - 1 :] - fw2[:, k - 1 :]).max() > 1e-6  # the test can fail
    assert np.abs(bw[:, : k + 2] - bw2[:, : k + 2]).max() > 1e-6
    assert np.all(fw[1, 6:] == 0) and np.all(bw[1, 7:] == 0)  # padding is not a target


def test_transfer_copies_embedding_and_recurrent_weights():
    config = tiny_config()
    language_model = build_language_model(config, VOCABULARY)
    classifier = build_model(config, VOCABULARY)
    transfer(classifier, language_model)
    for name in ("embedding", "bidirectional_0"):
        for ours, theirs in zip(classifier.get_layer(name).get_weights(), language_model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    unidirectional = tiny_config(bidirectional=False)
    classifier = build_model(unidirectional, VOCABULARY)
    transfer(classifier, build_language_model(unidirectional, VOCABULARY))


def test_train_with_pretraining_and_resume(tmp_path):
    data = write_data(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "--run-dir", str(run), "--data-dir", str(data), *TINY,
            "--pretrain-epochs", "3", "--pretrain-sampled", "20"]  # fmt: skip
    main(args)
    pretrain_metrics = json.loads((run / "pretrain" / "metrics.json").read_text())
    assert pretrain_metrics["pretrain_done"] and pretrain_metrics["pretrain_epochs"] == 3
    history = read_history(run / "pretrain" / "history.csv")
    assert history["val_loss"][-1] < history["val_loss"][0]  # the language model learns
    assert history["val_loss"][0] < np.log(200)  # below a uniform guess over the vocabulary
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["validation_accuracy"] > 0.6
    main(args[:-4] + ["--pretrain-epochs", "3", "--pretrain-sampled", "20", "--epochs", "5"])
    assert len(read_history(run / "pretrain" / "history.csv")["loss"]) == 3  # not retrained
    assert len(read_history(run / "history.csv")["loss"]) == 5
