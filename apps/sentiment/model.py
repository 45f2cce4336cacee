"""Many-to-one classifier: embedding with masking, (bi)directional recurrent layers of the
suite, masked pooling over time, a sigmoid read-out of the positive-class probability."""

from __future__ import annotations

import keras
from keras import ops

import layers
from apps.common.optimizer import make_optimizer
from apps.sentiment.config import SentimentConfig

PACKAGE = "sentiment"


def _segment_width(length, segment_length: int):
    """`length` rounded up to a whole number (at least one) of segments."""
    segments = ops.maximum((length + segment_length - 1) // segment_length, 1)
    return segments * segment_length


@keras.saving.register_keras_serializable(package=PACKAGE)
class ToSegments(keras.layers.Layer):
    """Cuts `[batch, length]` token ids into `[batch * segments, segment_length]` chunks
    (the last one padded with 0), so that a recurrent layer runs over short chunks of all
    reviews at once and a pooling layer puts each review back together (the chopping of
    Johnson & Zhang 2016, "Supervised and Semi-Supervised Text Categorization using LSTM
    for Region Embeddings": a many-times shorter loop for the same pooled features).

    Args:
        segment_length: tokens per chunk.
    """

    def __init__(self, segment_length: int, **kwargs):
        super().__init__(**kwargs)
        self.segment_length = segment_length

    def call(self, token_ids):
        length = ops.shape(token_ids)[1]
        width = _segment_width(length, self.segment_length)
        padded = ops.pad(token_ids, [[0, 0], [0, width - length]])
        return ops.reshape(padded, (-1, self.segment_length))

    def compute_output_shape(self, input_shape):
        return (None, self.segment_length)

    def get_config(self):
        return {**super().get_config(), "segment_length": self.segment_length}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedPooling(keras.layers.Layer):
    """Max and/or mean over the real (non-padding) time steps of each review.

    Call arguments:
        inputs: `[sequences, token_ids]`: the recurrent outputs `[batch', steps, features]`
            and the review's ids `[batch, length]` (0 = padding). With `segment_length`
            the sequences are the chunks of `ToSegments` and are joined back per review.

    A review without any token pools to zeros.

    Args:
        mode: "max", "mean" or "max_mean" (both, concatenated).
        segment_length: 0, or the chunk length used by `ToSegments`.
    """

    def __init__(self, mode: str = "max_mean", segment_length: int = 0, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "mean", "max_mean"):
            raise ValueError(f"mode must be 'max', 'mean' or 'max_mean', got {mode!r}")
        self.mode = mode
        self.segment_length = segment_length

    def call(self, inputs, mask=None):
        sequences, token_ids = inputs
        if self.segment_length:
            length = ops.shape(token_ids)[1]
            width = _segment_width(length, self.segment_length)
            token_ids = ops.pad(token_ids, [[0, 0], [0, width - length]])
            features = ops.shape(sequences)[-1]
            sequences = ops.reshape(sequences, (ops.shape(token_ids)[0], width, features))
        present = ops.expand_dims(ops.not_equal(token_ids, 0), -1)
        mask = ops.cast(present, sequences.dtype)
        pooled = []
        if self.mode in ("max", "max_mean"):
            maxima = ops.max(ops.where(present, sequences, -1e9), axis=1)
            has_tokens = ops.any(present, axis=1)
            pooled.append(ops.where(has_tokens, maxima, ops.zeros_like(maxima)))
        if self.mode in ("mean", "max_mean"):
            count = ops.maximum(ops.sum(mask, axis=1), 1.0)
            pooled.append(ops.sum(sequences * mask, axis=1) / count)
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        sequences_shape = input_shape[0]
        width = sequences_shape[-1] * (2 if self.mode == "max_mean" else 1)
        return (None, width)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "segment_length": self.segment_length}


def embed(config: SentimentConfig, vocabulary_size: int, ids):
    """The masked embedding (named "embedding") and word dropout of token ids `ids`."""
    hidden = keras.layers.Embedding(
        vocabulary_size, config.embedding_size, mask_zero=True, name="embedding"
    )(ids)
    if config.embedding_dropout > 0:
        hidden = keras.layers.Dropout(
            config.embedding_dropout, noise_shape=(None, None, 1), name="word_dropout"
        )(hidden)
    return hidden


def recurrent_layer(
    config: SentimentConfig, index: int, return_sequences: bool, merge_mode: str | None = "concat"
) -> keras.layers.Layer:
    """Recurrent layer `index` of the stack ("recurrent_<index>", or "bidirectional_<index>"
    around it); `merge_mode=None` returns the two directions apart (language-model
    pretraining), with the same weights as the default concatenation."""
    cell = layers.build_cell(
        config.cell, config.units, dropout=config.dropout, recurrent_dropout=config.recurrent_dropout
    )
    recurrent = layers.Recurrent(cell, return_sequences=return_sequences, name=f"recurrent_{index}")
    if config.bidirectional:
        return layers.Bidirectional(recurrent, merge_mode=merge_mode, name=f"bidirectional_{index}")
    return recurrent


def build_model(config: SentimentConfig, vocabulary_size: int) -> keras.Model:
    """Token ids `[batch, length]` (0 = padding) -> positive-class probability `[batch, 1]`."""
    config.validate()
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    ids = ToSegments(config.segment_length, name="segments")(token_ids) if config.segment_length else token_ids
    hidden = embed(config, vocabulary_size, ids)
    for index in range(config.num_layers):
        last = index == config.num_layers - 1
        hidden = recurrent_layer(config, index, return_sequences=not (last and config.pooling == "last"))(hidden)
    if config.pooling != "last":
        hidden = MaskedPooling(config.pooling, config.segment_length, name="pooling")(
            [hidden, token_ids]
        )
    if config.output_dropout > 0:
        hidden = keras.layers.Dropout(config.output_dropout, name="output_dropout")(hidden)
    probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden)
    return keras.Model(token_ids, probability, name=f"sentiment_{config.cell}")


def compile_model(model: keras.Model, config: SentimentConfig) -> keras.Model:
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def build_compiled_model(config: SentimentConfig, vocabulary_size: int) -> keras.Model:
    return compile_model(build_model(config, vocabulary_size), config)
