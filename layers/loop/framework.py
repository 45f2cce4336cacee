"""What the loop asks TensorFlow and Keras about the program it runs in.

Two of these questions have no public API; the private names they use are listed in
`layers/README.md` ("Private Keras and TensorFlow APIs") and checked by
`tests/layers/test_private_apis.py`, so that a TensorFlow or Keras release that moves them
fails there, loudly, rather than silently changing which loop runs.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from tensorflow.python.eager.record import could_possibly_record  # no public equivalent

__all__ = ["gpu_available", "gradient_may_be_recorded", "replicated", "tf_variable"]


def gradient_may_be_recorded() -> bool:
    """Whether a gradient tape is active (also while a `tf.function` is being traced in one)."""
    return could_possibly_record()


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU."""
    return bool(tf.config.list_logical_devices("GPU"))


def replicated() -> bool:
    """Whether a multi-replica `tf.distribute` strategy is active. Its mirrored variables are
    read through per-replica components that the hand-written backward pass does not map
    back to the variables, so those runs let TensorFlow differentiate the loop instead."""
    return tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1


def tf_variable(value) -> tf.Variable | None:
    """The `tf.Variable` behind a Keras variable (or the variable itself); else None.

    `keras.Variable.value` would cast it under a mixed-precision layer call; the
    `tf.Variable` itself is what `tf.custom_gradient` hands to the backward pass.
    """
    if isinstance(value, tf.Variable):
        return value
    if isinstance(value, keras.Variable):
        return value._value  # no public equivalent
    return None
