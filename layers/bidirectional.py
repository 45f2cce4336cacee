"""`Bidirectional`: Keras's wrapper, made safe to load inside a larger saved model.

`keras.layers.Bidirectional.__init__` copies its layer by serialising and deserialising it.
While `keras.saving.load_model` runs, Keras 3 tracks every serialised object by `id()`
(its object-sharing scope) and hands back an object it has already deserialised under the
same `id()`. Objects created and dropped during loading (the layer a `Bidirectional` is built
from, including one a custom layer builds in `__init__`) free their addresses, a later
layer can land on the same address, and the wrapper then receives another wrapper's
forward or backward layer: loading fails ("Forward layer and backward layer should have
different `go_backwards` value") or, worse, two wrappers share one layer. Whether it
happens depends on memory layout (seen in CI, not reproducible at will). This subclass
copies its layer outside that scope; the saved format is Keras's own.
"""

from __future__ import annotations

import contextlib

import keras
from keras.src.backend.common import global_state  # the scope has no public handle

_SHARING_MAPS = ("shared_objects/id_to_obj_map", "shared_objects/id_to_config_map")


@contextlib.contextmanager
def outside_object_sharing():
    """Suspends Keras's object-sharing scope (if one is active) for the block."""
    saved = [global_state.get_global_attribute(key) for key in _SHARING_MAPS]
    for key in _SHARING_MAPS:
        global_state.set_global_attribute(key, None)
    try:
        yield
    finally:
        for key, value in zip(_SHARING_MAPS, saved):
            global_state.set_global_attribute(key, value)


@keras.saving.register_keras_serializable(package="rnn_suite")
class Bidirectional(keras.layers.Bidirectional):
    """`keras.layers.Bidirectional` whose copies of the wrapped layer never alias another
    layer when a model is loaded (see the module docstring). Same arguments and outputs.

    >>> x = keras.Input((None, 8))
    >>> y = layers.Bidirectional(layers.Recurrent(layers.LSTMCell(16), return_sequences=True))(x)
    """

    def __init__(self, layer, *args, **kwargs):
        with outside_object_sharing():
            super().__init__(layer, *args, **kwargs)
