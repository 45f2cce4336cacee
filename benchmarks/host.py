"""The `machine` line of the flat results files in `benchmarks/results/`."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    """E.g. "x86_64, 2 CPU cores, no GPU, TensorFlow 2.21.0" for this machine."""
    import tensorflow as tf  # here, so that commands that only read results stay fast

    gpus = len(tf.config.list_physical_devices("GPU"))
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{f'{gpus} GPU' if gpus else 'no GPU'}, TensorFlow {tf.__version__}"
    )


def machine_of_nested_host(host: dict) -> str:
    """The same line for the `host` record of an old nested results file (those files were
    all written on the CPU-only development machine)."""
    return f"{host['machine']}, {host['cpu_count']} CPU cores, no GPU, TensorFlow {host['tensorflow']}"
