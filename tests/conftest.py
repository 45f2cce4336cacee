"""Test-wide setup: quiet TensorFlow, two logical CPU devices, deterministic seeds.

The logical devices must be configured before TensorFlow initialises its runtime, so this
runs at import time of the test session, before any test module imports TensorFlow ops.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
except RuntimeError:  # runtime already initialised by an earlier import
    pass
