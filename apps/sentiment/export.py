"""The serving module: raw review strings in, positive-class probability out, with the
tokenisation inside the graph."""

from __future__ import annotations

import keras
import tensorflow as tf

from apps.sentiment.data import TextEncoder

SIGNATURE = "serving_default"


class SentimentServer(tf.Module):
    """`serve(texts)`: a `[batch]` string tensor of raw reviews (any bytes: invalid UTF-8
    is repaired, empty strings are allowed, long reviews are cut to the configured
    `max_length` tokens) -> `{"probability": [batch] float32, "num_tokens": [batch]
    int32}`. `num_tokens` is the number of tokens the model read (0 for an empty or
    whitespace-only review, whose probability is the model's prior)."""

    def __init__(self, model: keras.Model, encoder: TextEncoder):
        super().__init__(name="sentiment_server")
        self.model = model
        self.encoder = encoder

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(self, texts):
        ids = self.encoder(texts)
        probability = tf.reshape(self.model(ids, training=False), [-1])
        num_tokens = tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1)
        return {"probability": probability, "num_tokens": num_tokens}
