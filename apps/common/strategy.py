"""tf.distribute strategy by name: nothing home-made for distribution."""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """`default` (one device), `mirrored` (all local GPUs, or all logical CPUs when there
    is no GPU), `multi_worker` (MultiWorkerMirroredStrategy configured by TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        # Without GPUs, reduce through one device: CPU collectives of several strategies in
        # one process can collide on their instance keys (shape-mismatch aborts).
        cross_device_ops = None if gpus else tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy multi_worker needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}})'
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from error
        return _MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose `reduce` takes what Keras 3's `fit` gives it
    (TensorFlow 2.21, Keras 3.15): a whole `(inputs, targets)` batch in one call (to
    build the model; MirroredStrategy maps such a structure, the collective strategy
    refused it: "Attempt to convert a value (PerReplica...)"), and scalar metrics with
    `axis=0` (refused: "Invalid reduction dimension 0 for input with 0 dimensions"; the
    mean over the replicas is meant, what MirroredStrategy's Keras path computes)."""

    def reduce(self, reduce_op, value, axis):
        parent = super()

        def one(item):
            local = self.experimental_local_results(item)[0]
            scalar = axis is not None and getattr(local, "shape", None) is not None and local.shape.rank == 0
            return parent.reduce(reduce_op, item, None if scalar else axis)

        return tf.nest.map_structure(one, value)


def fewest_across_workers(strategy: tf.distribute.Strategy, value: int) -> int:
    """The smallest of the workers' `value`s under a multi-worker strategy (an all-gather
    of one number per worker); `value` itself under any other strategy."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return value
    values = strategy.experimental_distribute_values_from_function(
        lambda _: tf.constant([value], tf.int64)
    )
    return int(tf.reduce_min(strategy.gather(values, axis=0)))


def global_batch_size(per_replica_batch_size: int, strategy: tf.distribute.Strategy) -> int:
    return per_replica_batch_size * strategy.num_replicas_in_sync
