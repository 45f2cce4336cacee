"""SimpleRNNCell / IRNN: NumPy reference, Keras equality, IRNN initialisation."""

import keras
import numpy as np
import pytest

from layers import Recurrent, SimpleRNNCell, build_cell
from tests.layers.numpy_reference import randomize_weights, run_reference

RNG = np.random.default_rng(1)


@pytest.mark.parametrize("name", ["rnn", "irnn"])
def test_matches_numpy_reference(name):
    x = RNG.normal(size=(3, 5, 3)).astype("float32")
    cell = build_cell(name, 4)
    layer = Recurrent(cell, return_sequences=True, return_state=True)
    layer.build(x.shape)
    randomize_weights(cell, seed=3)
    outputs, h = layer(x)
    ref_outputs, (ref_h,) = run_reference(cell, x)
    np.testing.assert_allclose(outputs, ref_outputs, atol=1e-5)
    np.testing.assert_allclose(h, ref_h, atol=1e-5)


def test_irnn_initialisation_is_identity_and_zero_bias():
    cell = SimpleRNNCell(5, activation="relu", identity_init=True, bias_initializer="ones")
    cell.build((None, 3))
    np.testing.assert_array_equal(cell.recurrent_kernel.numpy(), np.eye(5))
    np.testing.assert_array_equal(cell.bias.numpy(), np.zeros(5))
    assert cell.get_config()["identity_init"] is True


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_equals_keras_simple_rnn_with_copied_weights(activation):
    x = RNG.normal(size=(2, 6, 3)).astype("float32")
    keras_layer = keras.layers.SimpleRNN(4, activation=activation, return_sequences=True)
    expected = keras_layer(x)
    cell = SimpleRNNCell(4, activation=activation)
    layer = Recurrent(cell, return_sequences=True)
    layer.build(x.shape)
    cell.set_weights(keras_layer.cell.get_weights())
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)
