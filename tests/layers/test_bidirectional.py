"""`layers.Bidirectional`: copies of the wrapped layer never alias a layer Keras's
object-sharing scope already holds (the load-time failure seen in CI), and models round-trip."""

import keras
import numpy as np
import pytest
from keras.src.backend.common import global_state
from keras.src.saving.serialization_lib import ObjectSharingScope

import layers
from layers.bidirectional import _SHARING_MAPS


def collided_scope(new_layer, stale_layer):
    """Puts the state `load_model` leaves when a dropped object had `new_layer`'s address
    and was deserialised as `stale_layer` (CPython reuses freed addresses)."""
    global_state.get_global_attribute("shared_objects/id_to_config_map")[id(new_layer)] = {}
    global_state.get_global_attribute("shared_objects/id_to_obj_map")[id(new_layer)] = stale_layer


def gru(go_backwards=False):
    return layers.Recurrent(layers.GRUCell(3), return_sequences=True, go_backwards=go_backwards)


def test_keras_wrapper_aliases_a_stale_layer_under_address_reuse():
    """The hazard the subclass exists for (if Keras fixes it, this fails: drop the subclass)."""
    stale, layer = gru(go_backwards=True), gru()
    with ObjectSharingScope():
        collided_scope(layer, stale)
        with pytest.raises(ValueError, match="go_backwards"):
            keras.layers.Bidirectional(layer)


def test_wrapper_copies_its_own_layer_under_address_reuse():
    stale, layer = gru(go_backwards=True), gru()
    with ObjectSharingScope():
        collided_scope(layer, stale)
        wrapper = layers.Bidirectional(layer)
        assert wrapper.forward_layer is not stale and wrapper.backward_layer is not stale
        assert not wrapper.forward_layer.go_backwards and wrapper.backward_layer.go_backwards
        # the scope's maps are back as they were, with nothing recorded for the copies
        maps = [global_state.get_global_attribute(key) for key in _SHARING_MAPS]
        assert [len(m) for m in maps] == [1, 1]
    assert [global_state.get_global_attribute(key) for key in _SHARING_MAPS] == [None, None]


@keras.saving.register_keras_serializable(package="tests")
class Reader(keras.layers.Layer):
    """A custom layer building a wrapper in `__init__`, as apps/tagging's character reader."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.reader = layers.Bidirectional(layers.Recurrent(layers.LSTMCell(3)))

    def build(self, input_shape):
        self.reader.build(input_shape)

    def call(self, x):
        return self.reader(x)


def test_stacked_wrappers_round_trip(tmp_path):
    inputs = keras.Input((None, 4))
    hidden = inputs
    for index in range(3):
        cell = layers.build_cell(("gru", "lstm", "gru")[index], 3)
        hidden = layers.Bidirectional(layers.Recurrent(cell, return_sequences=True))(hidden)
    model = keras.Model(inputs, [hidden, Reader()(inputs)])
    x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    for _ in range(5):  # several loads in one process: freed addresses get reused
        loaded = keras.saving.load_model(path)
        for expected, got in zip(model(x), loaded(x)):
            np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-6)
        wrappers = [layer for layer in loaded.layers if isinstance(layer, layers.Bidirectional)]
        copies = [w.forward_layer for w in wrappers] + [w.backward_layer for w in wrappers]
        assert len(wrappers) == 3 and len({id(layer) for layer in copies}) == 6
