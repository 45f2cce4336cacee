"""Language-model pretraining of the classifier's embedding and first recurrent layer, on
the training reviews themselves (Dai & Le 2015, "Semi-supervised Sequence Learning": an
LSTM initialised from a language model of the task's own text generalises much better
than one trained from random weights).

The pretraining model is the classifier's own embedding and first (bidirectional)
recurrent layer, built by the same functions, with the two directions kept apart: the
forward direction's output at step t predicts token t+1, the backward direction's output at
step t predicts token t-1 (a bidirectional language model, as in ELMo), so that neither
sees the token it predicts. Training uses a sampled softmax (Jean et al. 2015) over the
vocabulary; validation scores the exact full softmax. Only the review texts of the
training part are used (never a label, never the validation or test texts for training);
the validation reviews measure the language model's held-out loss.

`train --pretrain-epochs N` runs this stage first in `RUN_DIR/pretrain/` (a run directory of
its own: resumable, checkpoints, history) and starts the classifier from its best epoch.
"""

from __future__ import annotations

import dataclasses
import logging

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from apps.common.checkpoints import load_model_file
from apps.common.cli import RunContext
from apps.common.optimizer import make_optimizer
from apps.common.run_dir import RunDir
from apps.common.training import train_model
from apps.sentiment.config import SentimentConfig
from apps.sentiment.model import PACKAGE, embed, recurrent_layer

logger = logging.getLogger(__name__)

#: The layers whose weights the classifier takes from the language model.
TRANSFERRED = ("embedding", "bidirectional_0", "recurrent_0")
DONE_KEY = "pretrain_done"


@keras.saving.register_keras_serializable(package=PACKAGE)
class LanguageModelLoss(keras.layers.Layer):
    """Mean negative log-likelihood per real token of each sequence, under a softmax over
    the vocabulary: `[hidden [batch, steps, units], targets [batch, steps]]` -> `[batch]`
    (nats; targets 0 are padding and do not count; a sequence without targets gives 0).

    When training with `num_sampled` < vocabulary size, the softmax is sampled
    (`tf.nn.sampled_softmax_loss`, log-uniform candidates: ids are roughly in decreasing
    frequency); otherwise, and always in inference, it is the exact full softmax.

    Args:
        vocabulary_size: number of token ids (0 = padding, never a target).
        num_sampled: negative classes sampled per batch in training.
    """

    def __init__(self, vocabulary_size: int, num_sampled: int = 1024, **kwargs):
        # float32 under a mixed policy too: the (sampled) softmax over the vocabulary
        # needs its precision, and tf.nn.sampled_softmax_loss one dtype for all inputs.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.num_sampled = num_sampled

    def build(self, input_shape):
        units = input_shape[0][-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(self.vocabulary_size, units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.vocabulary_size,), initializer="zeros")

    def token_losses(self, hidden, targets, training=False):
        """Negative log-likelihood of every target `[batch, steps]` (0 at padding)."""
        units = ops.shape(hidden)[-1]
        flat_hidden = ops.reshape(ops.cast(hidden, self.kernel.dtype), (-1, units))
        flat_targets = ops.reshape(ops.cast(targets, "int32"), (-1,))
        if training and self.num_sampled < self.vocabulary_size:
            losses = tf.nn.sampled_softmax_loss(
                weights=self.kernel,
                biases=self.bias,
                labels=tf.cast(flat_targets[:, None], tf.int64),
                inputs=flat_hidden,
                num_sampled=self.num_sampled,
                num_classes=self.vocabulary_size,
                remove_accidental_hits=True,
            )
        else:
            logits = ops.matmul(flat_hidden, ops.transpose(self.kernel)) + self.bias
            losses = ops.sparse_categorical_crossentropy(flat_targets, logits, from_logits=True)
        losses = ops.reshape(losses, ops.shape(targets))
        return ops.where(ops.not_equal(targets, 0), losses, ops.zeros_like(losses))

    def call(self, inputs, training=None, mask=None):
        del mask  # the targets say which steps count
        hidden, targets = inputs
        losses = self.token_losses(hidden, targets, training=bool(training))
        count = ops.sum(ops.cast(ops.not_equal(targets, 0), losses.dtype), axis=1)
        return ops.sum(losses, axis=1) / ops.maximum(count, 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_sampled": self.num_sampled,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
def model_output_loss(y_true, y_pred):
    """The model's own output is its loss (the language model computes it inside)."""
    del y_true
    return y_pred


def next_tokens(ids):
    """Target of the forward direction at step t: token t+1 (0 after the last, and at
    padding)."""
    shifted = ops.pad(ids[:, 1:], [[0, 0], [0, 1]])
    return ops.where(ops.not_equal(ids, 0), shifted, ops.zeros_like(shifted))


def previous_tokens(ids):
    """Target of the backward direction at step t: token t-1 (0 before the first, and at
    padding)."""
    shifted = ops.pad(ids[:, :-1], [[0, 0], [1, 0]])
    return ops.where(ops.not_equal(ids, 0), shifted, ops.zeros_like(shifted))


def build_language_model(config: SentimentConfig, vocabulary_size: int) -> keras.Model:
    """Token ids `[batch, length]` -> mean NLL per token `[batch]` of the classifier's
    embedding and first recurrent layer, read as a (bidirectional) language model."""
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    hidden = embed(config, vocabulary_size, token_ids)
    outputs = recurrent_layer(config, 0, return_sequences=True, merge_mode=None)(hidden)
    head = LanguageModelLoss(vocabulary_size, config.pretrain_sampled, name="softmax")
    if config.bidirectional:
        forward, backward = outputs
        loss = (head([forward, next_tokens(token_ids)]) + head([backward, previous_tokens(token_ids)])) / 2.0
    else:
        loss = head([outputs, next_tokens(token_ids)])
    return keras.Model(token_ids, loss, name=f"language_model_{config.cell}")


def pretraining_config(config: SentimentConfig) -> SentimentConfig:
    """The classifier's config with the pretraining stage's epochs, learning rate and
    objective."""
    return dataclasses.replace(
        config,
        epochs=config.pretrain_epochs,
        learning_rate=config.pretrain_learning_rate or config.learning_rate,
        monitor="val_loss",
        monitor_mode="min",
    )


def _unlabelled(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """(ids, label) batches -> (ids, dummy target): the labels are dropped."""
    return dataset.map(lambda ids, label: (ids, tf.zeros_like(label)))


def pretrain(
    ctx: RunContext,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
    vocabulary_size: int,
) -> keras.Model:
    """Trains (or resumes, or reloads when finished) the language model in
    `RUN_DIR/pretrain/` on the classifier's own (ids, label) batches, labels dropped, and
    returns it at its best validation epoch."""
    run_dir = RunDir(ctx.run_dir.root / "pretrain")
    config = pretraining_config(ctx.config)
    config.run_dir = str(run_dir.root)
    if run_dir.read_metrics().get(DONE_KEY):
        logger.info("pretraining: finished earlier, loading %s", run_dir.best_model_path)
        return load_language_model(run_dir)
    if config.num_layers > 1:
        logger.info("pretraining: only layer 0 of %d is pretrained (a language model cannot "
                    "read the concatenated directions of a deeper layer)", config.num_layers)

    def build() -> keras.Model:
        model = build_language_model(config, vocabulary_size)
        model.compile(optimizer=make_optimizer(config), loss=model_output_loss)
        return model

    sub = RunContext(app=ctx.app, config=config, run_dir=run_dir, args=ctx.args)
    validation = _unlabelled(validation_data) if validation_data is not None else None
    model, history = train_model(sub, build, _unlabelled(train_data), validation)
    if validation is not None:
        model = load_language_model(run_dir)
    losses = history.get("val_loss") or history.get("loss") or [float("nan")]
    run_dir.write_metrics(
        {
            DONE_KEY: True,
            "pretrain_epochs": len(history.get("loss", [])),
            "pretrain_best_val_loss": float(np.nanmin(losses)),
        }
    )
    return model


def load_language_model(run_dir: RunDir) -> keras.Model:
    import layers  # noqa: F401  (registers the suite's layers for deserialisation)

    return load_model_file(run_dir.best_model_path)


def transfer(classifier: keras.Model, language_model: keras.Model) -> keras.Model:
    """Copies the embedding and the first recurrent layer's weights from the language
    model into the classifier (same names, same shapes); returns the classifier."""
    copied = []
    for name in TRANSFERRED:
        try:
            source = language_model.get_layer(name)
        except ValueError:
            continue
        target = classifier.get_layer(name)
        target.set_weights(source.get_weights())
        copied.append(name)
    if "embedding" not in copied or len(copied) < 2:
        raise ValueError(f"the language model lacks the classifier's layers {TRANSFERRED}: found {copied}")
    logger.info("classifier initialised from the language model: %s", ", ".join(copied))
    return classifier
