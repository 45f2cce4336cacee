"""Recurrent under MirroredStrategy (two logical CPUs from conftest): every weight trains."""

import numpy as np
import tensorflow as tf

import layers


def test_every_cell_weight_gets_a_gradient_under_mirrored_strategy():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        recurrent = layers.Recurrent(layers.build_cell("gru", 4))
        recurrent.build((None, 5, 3))
    inputs = np.random.default_rng(0).normal(size=(4, 5, 3)).astype("float32")

    @tf.function
    def replica_grads(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(recurrent(x, training=True) ** 2)
        return tape.gradient(loss, recurrent.trainable_variables)

    grads = strategy.run(replica_grads, args=(inputs,))
    for variable, grad in zip(recurrent.trainable_variables, grads):
        assert grad is not None, f"no gradient for {variable.path}"
        local = strategy.experimental_local_results(grad)
        assert all(np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0) for g in local)
