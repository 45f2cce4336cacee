"""Test-wide setup: quiet TensorFlow, two logical CPU devices, deterministic seeds, and
`--mixed-precision auto` standing for float32 on every machine.

The logical devices must be configured before TensorFlow initialises its runtime, so this
runs at import time of the test session, before any test module imports TensorFlow ops.
`auto` would otherwise train in bfloat16 on CPUs with AMX or AVX512-BF16 and in float32
elsewhere, and tests that compare with float32 references would pass on one machine and
fail on the other; the bfloat16 paths are tested explicitly (`--mixed-precision
mixed_bfloat16`, tests/apps/test_bfloat16.py) on every machine. Subprocesses inherit it.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("RNN_SUITE_AUTO_PRECISION", "float32")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
except RuntimeError:  # runtime already initialised by an earlier import
    pass


import pytest  # noqa: E402


@pytest.fixture
def offline_tfds(monkeypatch):
    """No network, and any attempt at a TFDS download or preparation fails the test: a
    code path that "fails fast" offline is shown to never reach the retrying download
    (which takes minutes), without timing it."""
    import tensorflow_datasets as tfds

    import pipelines.tfds_source

    def refuse(*args, **kwargs):
        raise AssertionError("a TFDS download or preparation was attempted offline")

    monkeypatch.setattr(pipelines.tfds_source, "network_available", lambda *a, **k: False)
    monkeypatch.setattr(tfds, "load", refuse)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)
