"""NormStabilizer: the penalty of Krueger & Memisevic 2016, masked steps excluded."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import LSTMCell, NormStabilizer, Recurrent

RNG = np.random.default_rng(9)


def reference_penalty(h, beta, lengths):
    """beta/T * sum_t (||h_t|| - ||h_{t-1}||)^2 per sequence over its valid steps, batch mean."""
    values = []
    for row, length in zip(h, lengths):
        norms = np.linalg.norm(row[:length], axis=-1)
        values.append(np.sum(np.diff(norms) ** 2) / max(length, 1))
    return beta * np.mean(values)


def test_penalty_equals_the_formula_without_mask():
    h = RNG.normal(size=(3, 6, 4)).astype("float32")
    layer = NormStabilizer(beta=2.5)
    np.testing.assert_array_equal(layer(h), h)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(layer.losses[0], reference_penalty(h, 2.5, [6, 6, 6]), rtol=1e-5)


def test_masked_steps_are_excluded():
    h = RNG.normal(size=(3, 6, 4)).astype("float32")
    lengths = [6, 3, 0]
    mask = np.arange(6)[None] < np.array(lengths)[:, None]
    penalty = NormStabilizer(beta=1.5).penalty(h, mask)
    np.testing.assert_allclose(penalty, reference_penalty(h, 1.5, lengths), rtol=1e-5)


def test_gradient_is_finite_on_zero_states():
    h = tf.Variable(np.zeros((2, 4, 3), "float32"))
    with tf.GradientTape() as tape:
        penalty = NormStabilizer(beta=1.0).penalty(h)
    gradient = tape.gradient(penalty, h)
    assert np.all(np.isfinite(gradient))


def test_adds_its_loss_in_a_model_and_propagates_the_mask():
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    h = Recurrent(LSTMCell(3), return_sequences=True)(x)
    h = NormStabilizer(beta=10.0)(h)
    last = Recurrent(LSTMCell(2))(h)
    model = keras.Model(tokens, last)
    ids = np.array([[1, 2, 3, 0], [4, 5, 0, 0]])
    model(ids)
    assert len(model.losses) == 1
    states = keras.Model(tokens, model.layers[2].output)(ids)
    expected = reference_penalty(np.asarray(states), 10.0, [3, 2])
    np.testing.assert_allclose(model.losses[0], expected, rtol=1e-5)


def test_negative_beta_raises():
    with pytest.raises(ValueError, match="beta"):
        NormStabilizer(beta=-1.0)
