"""The RNN language model: P(x_{t+1} | x_1..x_t) = softmax(V h_t + b) (Mikolov et al. 2010).

    e_t = E[x_t]                                  embedding (dropout: token / variational)
    h_t^(l) = cell^(l)(h_t^(l-1), s_{t-1}^(l))    stacked `layers.Recurrent`, any cell
    logits_t = h_t^(L) V + b                      or, tied (Press & Wolf 2017; Inan et al.
                                                  2017): (h_t^(L) P) E^T + b

The tied output keeps its own bias b (as Press & Wolf and AWD-LSTM do): without it the
model can express word frequencies only through a direction of the shared embedding,
and learns far more slowly (`benchmarks/lm_diagnosis.py`).

The same weights serve three graphs: the training model (stateful with a fixed batch for
truncated BPTT, or stateless), the evaluation model (stateful over `eval_batch_size`
streams) and a one-token step function for sampling (`TokenStepper`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import layers
from apps.common.optimizer import make_optimizer
from apps.common.precision import resolve_precision
from apps.language_model.config import LanguageModelConfig


@keras.saving.register_keras_serializable(package="rnn_suite")
class OutputBias(keras.layers.Layer):
    """Adds a trainable bias `b [vocab_size]` to logits `[..., vocab_size]`: the bias of a
    tied output layer, `keras.layers.ReversibleEmbedding(..., reverse=True)` having none.

    Args:
        bias_initializer: Initializer of `b` (zeros).
    """

    def __init__(self, bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        self.bias = self.add_weight(
            shape=(input_shape[-1],), initializer=self.bias_initializer, name="bias"
        )

    def call(self, logits):
        return logits + keras.ops.cast(self.bias, logits.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


def build_model(
    config: LanguageModelConfig,
    vocab_size: int,
    batch_size: int | None = None,
    stateful: bool = False,
    dtype_policy: str | None = None,
) -> keras.Model:
    """tokens `[batch, time]` int32 -> logits `[batch, time, vocab_size]` float32.

    `stateful=True` needs `batch_size`: the recurrent layers then carry their final states
    into the next call (reset them with `reset_states`). The layers take `dtype_policy`
    (default: the training precision `config.mixed_precision`, or float32); the weights
    are float32 either way, so builds of different precisions share them (`copy_weights`).
    The process-wide policy is restored afterwards."""
    if stateful and not batch_size:
        raise ValueError("a stateful language model needs a fixed batch size")
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy or resolve_precision(config.mixed_precision))
    try:
        return _build(config, vocab_size, batch_size, stateful)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _build(config: LanguageModelConfig, vocab_size: int, batch_size, stateful: bool) -> keras.Model:
    embedding_dim = config.embedding_dim
    tokens = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="tokens")
    if config.tie_embeddings:
        embedding = keras.layers.ReversibleEmbedding(
            vocab_size, embedding_dim, tie_weights=True, name="embedding"
        )
    else:
        embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
    x = embedding(tokens)
    if config.embedding_dropout > 0:
        # One draw per token occurrence: a dropped token's whole vector is zero.
        x = keras.layers.Dropout(
            config.embedding_dropout, noise_shape=(None, None, 1), name="embedding_dropout"
        )(x)
    if config.input_dropout > 0:
        x = keras.layers.Dropout(
            config.input_dropout, noise_shape=(None, 1, embedding_dim), name="input_dropout"
        )(x)
    for index in range(config.num_layers):
        cell = layers.build_cell(
            config.cell,
            config.units,
            recurrent_dropout=config.recurrent_dropout,
            recurrent_weight_dropout=config.recurrent_weight_dropout,
            zoneout_cell=config.zoneout_cell,
            zoneout_hidden=config.zoneout_hidden,
        )
        x = layers.Recurrent(
            cell, return_sequences=True, stateful=stateful, name=f"recurrent_{index}"
        )(x)
        if config.norm_stabilizer > 0:
            x = layers.NormStabilizer(config.norm_stabilizer, name=f"norm_stabilizer_{index}")(x)
        if config.dropout > 0:
            # Variational ("locked") dropout: one mask per window and sequence.
            x = keras.layers.Dropout(
                config.dropout, noise_shape=(None, 1, config.units), name=f"dropout_{index}"
            )(x)
    if config.tie_embeddings:
        if config.units != embedding_dim:
            x = keras.layers.Dense(embedding_dim, name="projection")(x)
        logits = OutputBias(name="output_bias")(embedding(x, reverse=True))
    else:
        logits = keras.layers.Dense(vocab_size, name="softmax")(x)
    if logits.dtype != "float32":
        # The loss and the metrics see float32 logits under a mixed policy.
        logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(logits)
    return keras.Model(tokens, logits, name="rnn_language_model")


def compile_model(model: keras.Model, config: LanguageModelConfig) -> keras.Model:
    """Adam (or `config.optimizer`) with global-norm clipping; loss = cross-entropy in nats
    per token (plus any norm-stabilizer penalty); `cross_entropy` is the loss alone."""
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="cross_entropy")
        ],
    )
    return model


def recurrent_layers(model: keras.Model) -> list[layers.Recurrent]:
    return [layer for layer in model.layers if isinstance(layer, layers.Recurrent)]


def reset_states(model: keras.Model) -> None:
    """Zeroes the states of every stateful recurrent layer."""
    for layer in recurrent_layers(model):
        if layer.stateful:
            layer.reset_state()


def output_bias(model: keras.Model) -> keras.Variable:
    """The bias b of the output layer (`softmax`'s, or the tied output's `output_bias`)."""
    names = {layer.name for layer in model.layers}
    layer = model.get_layer("output_bias" if "output_bias" in names else "softmax")
    return layer.weights[-1]


def unigram_log_probabilities(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """log p(token) of the add-one unigram model of `ids`: `[vocab_size]` float32."""
    counts = np.bincount(np.asarray(ids), minlength=vocab_size).astype("float64") + 1.0
    return np.log(counts / counts.sum()).astype("float32")


def set_unigram_bias(model: keras.Model, ids: np.ndarray) -> keras.Model:
    """Starts the output bias at the training split's log unigram frequencies, so that
    the untrained model already predicts word frequencies (a model with near-zero
    logits otherwise starts at perplexity = vocabulary size). Adam moves each weight by
    about the learning rate per step, so a bias started at zero needs thousands of steps
    to reach log-frequencies of -3 to -13 (`benchmarks/lm_diagnosis.py`)."""
    bias = output_bias(model)
    bias.assign(unigram_log_probabilities(ids, bias.shape[0]))
    return model


def copy_weights(source: keras.Model, target: keras.Model) -> keras.Model:
    """Copies the trained weights between two builds of the same configuration (e.g. the
    stateful training model and a stateless one); stateful states are not copied."""
    for layer in target.layers:
        if not layer.weights:
            continue
        origin = source.get_layer(layer.name)
        if isinstance(layer, layers.Recurrent):
            layer.cell.set_weights(origin.cell.get_weights())
        else:
            layer.set_weights(origin.get_weights())
    return target


def load_trained(
    path, config: LanguageModelConfig, vocab_size: int, batch_size=None, stateful=False
) -> keras.Model:
    """Rebuilds the model for `batch_size`/`stateful` and loads the weights of a `.keras`
    checkpoint into it."""
    trained = keras.saving.load_model(path, compile=False)
    return copy_weights(
        trained, build_model(config, vocab_size, batch_size, stateful, dtype_policy="float32")
    )


class TokenStepper:
    """One step of the language model for decoding: `(token_ids [B], state) ->
    (logits [B, V], new_state)`, the step-function contract of `layers.decoding`.

    Runs the model's own layers (embedding, each recurrent layer's cell, the output
    layer) one token at a time, at inference (no dropout). `state` is a tuple with one
    tuple of tensors per recurrent layer.
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.embedding = model.get_layer("embedding")
        self.cells = [layer.cell for layer in recurrent_layers(model)]
        names = {layer.name for layer in model.layers}
        self.projection = model.get_layer("projection") if "projection" in names else None
        self.softmax = model.get_layer("softmax") if "softmax" in names else None
        self.output_bias = model.get_layer("output_bias") if "output_bias" in names else None

    def initial_state(self, batch_size) -> tuple:
        return tuple(
            tuple(tf.convert_to_tensor(s) for s in cell.get_initial_state(batch_size=batch_size))
            for cell in self.cells
        )

    def __call__(self, token_ids, state):
        x = self.embedding(token_ids)
        new_state = []
        for cell, cell_state in zip(self.cells, state):
            x, next_cell_state = cell(x, list(cell_state), training=False)
            next_cell_state = (
                next_cell_state if isinstance(next_cell_state, (list, tuple)) else [next_cell_state]
            )
            new_state.append(tuple(next_cell_state))
        if self.projection is not None:
            x = self.projection(x)
        if self.softmax is not None:
            logits = self.softmax(x)
        else:
            logits = self.output_bias(self.embedding(x, reverse=True))
        return tf.cast(logits, tf.float32), tuple(new_state)

    def prefill(self, token_ids, state, length=None):
        """Feeds `token_ids [B, N]` one step at a time; returns the state after them (after
        the first `length` of them, when given: the rest is padding)."""
        token_ids = tf.convert_to_tensor(token_ids, tf.int32)
        length = tf.shape(token_ids)[1] if length is None else length

        def body(time, state):
            _, state = self(token_ids[:, time], state)
            return time + 1, state

        _, state = tf.while_loop(lambda time, _: time < length, body, (tf.constant(0), state))
        return state
