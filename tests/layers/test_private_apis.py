"""The private Keras, TensorFlow and keras-tuner APIs that the suite uses, each checked the
way the suite uses it (why each is needed: "Private Keras and TensorFlow APIs" in
`layers/README.md`). The suite imports them without a fallback; when a release moves or
changes one, its test here fails and says which API, which file needs it, and where the
list is.
"""

import importlib
import random

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf

import layers

README = "layers/README.md, 'Private Keras and TensorFlow APIs'"


def private(module: str, name: str, used_by: str):
    """`module.name`, or a test failure naming it and the file that needs it."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        pytest.fail(
            f"The private API {module}.{name} is gone in Keras {keras.__version__} / "
            f"TensorFlow {tf.__version__} ({error}); {used_by} needs a replacement ({README})."
        )


def private_attribute(owner, name: str, used_by: str):
    """`owner.name`, or a test failure naming it and the file that needs it."""
    if not hasattr(owner, name):
        pytest.fail(
            f"{type(owner).__name__}.{name} is gone in Keras {keras.__version__} / keras-tuner "
            f"{kt.__version__}; {used_by} needs a replacement ({README})."
        )
    return getattr(owner, name)


def test_could_possibly_record_tells_whether_a_tape_records():
    could_record = private(
        "tensorflow.python.eager.record", "could_possibly_record", "layers/loop/framework.py"
    )
    seen = []

    def probe():
        seen.append(could_record())
        return tf.constant(0.0)

    assert could_record() is False
    tf.function(probe)()  # traced with no tape active
    with tf.GradientTape():
        assert could_record() is True
        tf.function(probe)()  # traced inside a tape: the trace must prepare a gradient
    assert seen == [False, True]
    assert layers.loop.gradient_may_be_recorded() is False


def test_keras_variable_value_is_the_tf_variable_that_custom_gradient_hands_back():
    variable = keras.Variable(np.ones(2, "float32"))
    inner = private_attribute(variable, "_value", "layers/loop/framework.py")
    assert isinstance(inner, tf.Variable)
    handed = []

    @tf.custom_gradient
    def scaled(x):
        def grad(upstream, variables=None):
            handed.extend(variables)
            return upstream, [tf.zeros(2)]

        return x * tf.reduce_sum(tf.convert_to_tensor(variable)), grad

    x = tf.constant(1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = scaled(x)
    tape.gradient(y, [x, variable])
    assert len(handed) == 1 and handed[0] is inner


def test_autocast_scope_none_reads_variables_in_their_own_dtype():
    autocast_scope = private("keras.src.backend", "AutocastScope", "layers/recurrent.py")
    dtypes = []

    class Probe(keras.layers.Layer):
        def build(self, shape):
            self.weight = self.add_weight(shape=(2,))

        def call(self, x):
            dtypes.append(self.weight.value.dtype)
            with autocast_scope(None):
                dtypes.append(self.weight.value.dtype)
            return x

    Probe(dtype="mixed_bfloat16")(np.ones((1, 2), "float32"))
    assert dtypes == [tf.bfloat16, tf.float32]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_keras_backend_cudnn_kernels_take_what_recurrent_passes(kind):
    kernel_fn = private("keras.src.backend", kind, "layers/recurrent.py (cuDNN hand-off)")
    units, gates = 4, 4 if kind == "lstm" else 3
    states = [np.zeros((2, units), "float32")] * (2 if kind == "lstm" else 1)
    bias_shape = (gates * units,) if kind == "lstm" else (2, gates * units)
    arguments = dict(
        kernel=tf.ones((3, gates * units)),
        recurrent_kernel=tf.ones((units, gates * units)),
        bias=tf.zeros(bias_shape),
        activation=keras.activations.tanh,
        recurrent_activation=keras.activations.sigmoid,
        return_sequences=True,
        go_backwards=False,
        unroll=False,
        **({"reset_after": True} if kind == "gru" else {}),
    )
    inputs = np.ones((2, 5, 3), "float32")
    if not tf.config.list_logical_devices("GPU"):
        # What `Recurrent._run_cudnn` takes for "not here, use the suite's loop".
        with pytest.raises(NotImplementedError):
            kernel_fn(inputs, *states, None, **arguments)
        return
    last_output, outputs, new_states = kernel_fn(inputs, *states, None, **arguments)
    assert last_output.shape == (2, units) and outputs.shape == (2, 5, units)
    assert len(new_states) == len(states)


def test_dropout_rnn_cell_is_the_base_that_keras_rnn_prepares_masks_for():
    dropout_rnn_cell = private(
        "keras.src.layers.rnn.dropout_rnn_cell", "DropoutRNNCell", "layers/cell_base.py"
    )
    assert issubclass(layers.RecurrentCell, dropout_rnn_cell)
    # What it buys (one mask per sequence in keras.layers.RNN) is tested in
    # tests/layers/test_cell_base.py::test_input_dropout_one_mask_per_sequence.


def test_global_state_holds_the_object_sharing_maps_of_load_model():
    global_state = private(
        "keras.src.backend.common", "global_state", "layers/bidirectional.py"
    )
    sharing_scope = private(
        "keras.src.saving.serialization_lib", "ObjectSharingScope", "this test"
    )
    from layers.bidirectional import _SHARING_MAPS

    assert [global_state.get_global_attribute(key) for key in _SHARING_MAPS] == [None, None]
    with sharing_scope():
        maps = [global_state.get_global_attribute(key) for key in _SHARING_MAPS]
        assert all(isinstance(m, dict) for m in maps)


def test_global_seed_keys_seed_keras_as_set_random_seed_does():
    """`tuning.search.seed_trial(seed, tensorflow=False)`: Keras' seeds without
    `tf.random.set_seed`."""
    global_state = private("keras.src.backend.common", "global_state", "tuning/search.py")
    seed_generator_key = private(
        "keras.src.random.seed_generator", "GLOBAL_SEED_GENERATOR", "tuning/search.py"
    )
    random_seed_key = private("keras.src.utils.rng_utils", "GLOBAL_RANDOM_SEED", "tuning/search.py")

    def draws():
        initializer = keras.initializers.GlorotUniform()  # seeded from Python's `random`
        return keras.random.uniform((4,)), initializer((3, 3))  # the global SeedGenerator

    keras.utils.set_random_seed(11)
    expected = draws()
    random.seed(11)
    np.random.seed(11)
    global_state.set_global_attribute(random_seed_key, 11)
    global_state.set_global_attribute(seed_generator_key, None)
    for got, want in zip(draws(), expected):
        np.testing.assert_array_equal(got, want)


def test_optimizer_ema_lists_pair_each_variable_with_its_average():
    optimizer = keras.optimizers.SGD(1.0, use_ema=True, ema_momentum=0.5)
    weight = keras.Variable(np.ones(2, "float32"))
    optimizer.build([weight])
    used_by = "apps/common/averaging.py"
    variables = private_attribute(optimizer, "_trainable_variables", used_by)
    averages = private_attribute(optimizer, "_model_variables_moving_average", used_by)
    assert len(variables) == len(averages) == 1 and variables[0] is weight
    optimizer.apply([tf.ones(2)], [weight])  # w: 1 -> 0; the average follows w at step 1
    optimizer.apply([tf.ones(2)], [weight])  # w: 0 -> -1; average 0.5 * 0 + 0.5 * -1
    np.testing.assert_allclose(weight.numpy(), [-1.0, -1.0])
    np.testing.assert_allclose(averages[0].numpy(), [-0.5, -0.5])


def test_keras_tuner_try_build_builds_through_build_hypermodel(tmp_path):
    built = []

    class Tuner(kt.RandomSearch):
        def _build_hypermodel(self, hp):
            built.append(hp)
            return super()._build_hypermodel(hp)

    def build(hp):
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    tuner = Tuner(build, objective="loss", max_trials=1, directory=str(tmp_path))
    used_by = "tuning/search.py"
    try_build = private_attribute(tuner, "_try_build", used_by)
    private_attribute(tuner, "_build_hypermodel", used_by)
    hp = kt.HyperParameters()
    assert isinstance(try_build(hp), keras.Model)
    assert built == [hp], f"keras-tuner's _try_build no longer calls _build_hypermodel ({used_by})"
