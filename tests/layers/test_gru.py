"""GRUCell: both reset placements, with and without layer norm, against NumPy and Keras."""

import keras
import numpy as np
import pytest

from layers import GRUCell, Recurrent
from tests.layers.numpy_reference import randomize_weights, run_reference

RNG = np.random.default_rng(4)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("extra", [{}, {"layer_norm": True}, {"zoneout_hidden": 0.25}, {"use_bias": False}])
def test_matches_numpy_reference(reset_after, extra):
    x = RNG.normal(size=(3, 5, 3)).astype("float32")
    cell = GRUCell(4, reset_after=reset_after, **extra)
    layer = Recurrent(cell, return_sequences=True, return_state=True)
    layer.build(x.shape)
    randomize_weights(cell, seed=7)
    outputs, h = layer(x)
    ref_outputs, (ref_h,) = run_reference(cell, x)
    np.testing.assert_allclose(outputs, ref_outputs, atol=1e-5)
    np.testing.assert_allclose(h, ref_h, atol=1e-5)
    np.testing.assert_allclose(keras.layers.RNN(cell, return_sequences=True)(x), outputs, atol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
def test_equals_keras_gru_with_copied_weights(reset_after):
    x = RNG.normal(size=(2, 7, 3)).astype("float32")
    keras_layer = keras.layers.GRU(5, reset_after=reset_after, return_sequences=True)
    keras_layer.build(x.shape)
    # Non-zero biases so that both bias rows of reset_after=True matter.
    keras_layer.cell.set_weights(
        [w + RNG.normal(scale=0.3, size=w.shape) for w in keras_layer.cell.get_weights()]
    )
    expected = keras_layer(x)
    cell = GRUCell(5, reset_after=reset_after)
    layer = Recurrent(cell, return_sequences=True)
    layer.build(x.shape)
    assert [w.shape for w in cell.weights] == [w.shape for w in keras_layer.cell.weights]
    cell.set_weights(keras_layer.cell.get_weights())
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)
