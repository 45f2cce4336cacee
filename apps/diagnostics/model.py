"""The studies' models, each one recurrent layer of the suite (`layers.Recurrent` over a
cell of `layers.build_cell`) and a read-out:

    regressor          [B, T, F] float -> [B]          the adding problem (squared error)
    sign_classifier    [B, T, 1] float -> [B] logit     sign memory (binary cross-entropy)
    copy_tagger        [B, T] int -> [B, T, V] logits   the copy task, a symbol each step
    char_language_model  tokens [B, k] and states -> logits [B, k, V] and final states
    encoder_decoder    source [B, S], target input [B, T] -> logits [B, T, V]

Sequence lengths are left open (`None`), so that one model, traced once, trains at every
gap T of a study. A model is compiled (Adam of `options`: learning rate and clipping)
when `options` are given.
"""

from __future__ import annotations

import keras

import layers
from apps.common.optimizer import make_optimizer
from apps.diagnostics.config import CELL_VARIANTS


def build_study_cell(name: str, units: int, **overrides):
    """The cell `name` of `STUDY_CELLS`: a name of `layers.CELL_NAMES` or a variant of
    `CELL_VARIANTS` (e.g. `lstm_fb0`: the LSTM with forget-gate bias 0)."""
    base, arguments = CELL_VARIANTS.get(name, (name, {}))
    return layers.build_cell(base, units, **{**arguments, **overrides})


def _compiled(model: keras.Model, options, loss) -> keras.Model:
    if options is not None:
        model.compile(optimizer=make_optimizer(options), loss=loss)
    return model


def regressor(cell, features: int = 2, options=None) -> keras.Model:
    inputs = keras.Input((None, features), name="sequence")
    hidden = layers.Recurrent(cell, name="recurrent")(inputs)
    output = keras.layers.Dense(1, name="readout")(hidden)
    model = keras.Model(inputs, keras.ops.squeeze(output, -1), name="regressor")
    return _compiled(model, options, "mse")


def sign_classifier(cell, options=None) -> keras.Model:
    inputs = keras.Input((None, 1), name="sequence")
    hidden = layers.Recurrent(cell, name="recurrent")(inputs)
    logit = keras.layers.Dense(1, name="readout")(hidden)
    model = keras.Model(inputs, keras.ops.squeeze(logit, -1), name="sign_classifier")
    return _compiled(model, options, keras.losses.BinaryCrossentropy(from_logits=True))


def copy_tagger(cell, vocab_size: int, options=None) -> keras.Model:
    """One-hot symbols in, a distribution over the symbols at every step out."""
    inputs = keras.Input((None,), dtype="int32", name="symbols")
    one_hot = keras.layers.Lambda(lambda ids: keras.ops.one_hot(ids, vocab_size),
                                  name="one_hot")(inputs)
    hidden = layers.Recurrent(cell, return_sequences=True, name="recurrent")(one_hot)
    logits = keras.layers.Dense(vocab_size, name="readout")(hidden)
    model = keras.Model(inputs, logits, name="copy_tagger")
    return _compiled(model, options, keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def char_language_model(cell, vocab_size: int, embedding_dim: int = 32) -> keras.Model:
    """`[tokens, *initial_states] -> [logits, *final_states]`: the states go in and come
    out explicitly, so that truncated BPTT carries them from one window to the next and
    any batch size evaluates with the same weights."""
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
    states = [keras.Input((size,), name=f"state_{index}") for index, size in enumerate(sizes)]
    embedded = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(tokens)
    outputs = layers.Recurrent(cell, return_sequences=True, return_state=True,
                               name="recurrent")(embedded, initial_state=states)
    logits = keras.layers.Dense(vocab_size, name="softmax")(outputs[0])
    return keras.Model([tokens, *states], [logits, *outputs[1:]], name="char_language_model")


def encoder_decoder(cell_name: str, units: int, vocab_size: int,
                    embedding_dim: int = 32) -> keras.Model:
    """A sequence-to-sequence model without attention (Sutskever et al. 2014): the
    encoder's final states start the decoder, which reads the target shifted right
    (teacher forcing). Id 0 is padding on both sides (masked)."""
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    source_embedded = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True,
                                             name="source_embedding")(source)
    _, *states = layers.Recurrent(build_study_cell(cell_name, units), return_state=True,
                                  name="encoder")(source_embedded)
    target_embedded = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True,
                                             name="target_embedding")(target_in)
    decoded = layers.Recurrent(build_study_cell(cell_name, units), return_sequences=True,
                               name="decoder")(target_embedded, initial_state=states)
    logits = keras.layers.Dense(vocab_size, name="softmax")(decoded)
    return keras.Model([source, target_in], logits, name="encoder_decoder")
