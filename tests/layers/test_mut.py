"""MUTCell: MUT1-3 against the equations of Jozefowicz et al. 2015; input-width check."""

import keras
import numpy as np
import pytest

from layers import MUTCell, Recurrent
from tests.layers.numpy_reference import randomize_weights, run_reference

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("variant", [1, 2, 3])
def test_matches_numpy_reference(variant):
    x = RNG.normal(size=(3, 5, 4)).astype("float32")
    cell = MUTCell(4, variant=variant)
    layer = Recurrent(cell, return_sequences=True, return_state=True)
    layer.build(x.shape)
    randomize_weights(cell, seed=variant)
    outputs, h = layer(x)
    ref_outputs, (ref_h,) = run_reference(cell, x)
    np.testing.assert_allclose(outputs, ref_outputs, atol=1e-5)
    np.testing.assert_allclose(h, ref_h, atol=1e-5)
    np.testing.assert_allclose(keras.layers.RNN(cell, return_sequences=True)(x), outputs, atol=1e-5)


@pytest.mark.parametrize("variant", [1, 2])
def test_raw_input_variants_need_input_width_equal_units(variant):
    with pytest.raises(ValueError, match="input width must equal `units`"):
        Recurrent(MUTCell(4, variant=variant))(np.zeros((2, 3, 5), "float32"))


def test_mut3_accepts_any_input_width():
    assert Recurrent(MUTCell(4, variant=3))(np.zeros((2, 3, 5), "float32")).shape == (2, 4)


def test_invalid_variant():
    with pytest.raises(ValueError, match="variant"):
        MUTCell(4, variant=4)
