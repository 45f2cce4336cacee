"""The serving module: raw review strings in, positive-class probability out, with the
tokenisation inside the graph."""

from __future__ import annotations

import keras
import tensorflow as tf

from apps.common.serving import ServingOptions, by_length, xla_loops
from apps.sentiment.data import TextEncoder

SIGNATURE = "serving_default"


class SentimentServer(tf.Module):
    """`serve(texts)`: a `[batch]` string tensor of raw reviews (any bytes: invalid UTF-8
    is repaired, empty strings are allowed, long reviews are cut to the configured
    `max_length` tokens) -> `{"probability": [batch] float32, "num_tokens": [batch]
    int32}`. `num_tokens` is the number of tokens the model read (0 for an empty or
    whitespace-only review, whose probability is the model's prior).

    `options`: the serving levers (`apps.common.serving`); the default, plain, is what
    evaluation in this process uses, `export` passes those of `--xla`."""

    def __init__(self, model: keras.Model, encoder: TextEncoder, options: ServingOptions | None = None):
        super().__init__(name="sentiment_server")
        self.model = model
        self.encoder = encoder
        self.options = options or ServingOptions.plain()

    def _probability(self, inputs: dict) -> dict:
        with xla_loops(self.model, self.options.xla):
            return {"probability": tf.reshape(self.model(inputs["ids"], training=False), [-1])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(self, texts):
        ids = self.encoder(texts)
        num_tokens = tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1)
        if self.options.group_by_length:
            outputs = by_length(self._probability, {"ids": ids}, num_tokens, {"probability": tf.TensorSpec([], tf.float32)})
        else:
            outputs = self._probability({"ids": ids})
        return {"probability": outputs["probability"], "num_tokens": num_tokens}
