"""The fast paths of `Recurrent`: hand-written backward pass, mixed precision, XLA, cuDNN hand-off.

Behaviour only (equal results, the right path taken, the right decision); timings live in
`benchmarks/rnn_speed.py`, never in tests.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import CELL_NAMES, GRUCell, LSTMCell, Recurrent, SimpleRNNCell, build_cell, loop
from layers import recurrent as recurrent_module
from layers.loop.planned import PlannedLoop
from layers.recurrent import cudnn_handoff, cudnn_kind
from tests.layers.numpy_reference import randomize_weights

RNG = np.random.default_rng(44)
UNITS = 4
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 0, 1, 0]], bool)


@pytest.fixture
def fast_loop_spy(monkeypatch):
    """Counts the calls that take the hand-written backward pass."""
    calls = []
    original = PlannedLoop.fast_gradient

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(PlannedLoop, "fast_gradient", spy)
    return calls


def outputs_and_gradients(layer, x, mask, training, fast, initial_state=None):
    """Outputs and the gradients of a fixed random projection of them (inputs, states,
    weights), with the hand-written backward pass (`fast`) or TensorFlow's."""
    layer.fast_backward = fast
    with tf.GradientTape() as tape:
        tape.watch(x)
        if initial_state is not None:
            tape.watch(initial_state)
        outputs = layer(x, mask=mask, training=training, initial_state=initial_state)
        loss = sum(
            tf.reduce_sum(
                o * tf.reshape(tf.sin(tf.cast(tf.range(tf.size(o)), o.dtype)), tf.shape(o))
            )
            for o in outputs
        )
    sources = [x, *(initial_state or []), *layer.trainable_variables]
    return list(outputs), tape.gradient(loss, sources)


def reversed_layer_with_states(name, regularizers):
    """A built `Recurrent` (sequences and states, reversed) of cell `name` with random
    weights and `regularizers`, random inputs and random initial states."""
    cell = build_cell(name, UNITS, seed=3, **regularizers)
    layer = Recurrent(cell, return_sequences=True, return_state=True, go_backwards=True)
    x = tf.constant(RNG.normal(size=(3, 5, UNITS)).astype("float32"))
    layer.build(x.shape)
    randomize_weights(cell, seed=1)
    initial_state = [
        tf.constant(RNG.normal(size=(3, s)).astype("float32")) for s in layer.state_size
    ]
    return cell, layer, x, initial_state


@pytest.mark.parametrize("name", CELL_NAMES)
def test_fast_backward_equals_autodiff_of_the_loop(name, fast_loop_spy):
    """Every cell, with every dropout kind, a mask, reversed, initial states: same gradients."""
    regularizers = dict(
        dropout=0.3, recurrent_dropout=0.3, output_dropout=0.2, recurrent_weight_dropout=0.3
    )
    cell, layer, x, initial_state = reversed_layer_with_states(name, regularizers)
    seed_state = cell.seed_generator.state.numpy()
    fast = outputs_and_gradients(layer, x, MASK, True, True, initial_state)
    assert len(fast_loop_spy) == 1, "the hand-written backward pass was not used"
    cell.seed_generator.state.assign(seed_state)  # the same dropout masks
    reference = outputs_and_gradients(layer, x, MASK, True, False, initial_state)
    assert len(fast_loop_spy) == 1
    for a, b in zip(fast[0], reference[0]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    for a, b in zip(fast[1], reference[1]):
        assert a is not None and b is not None
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "gru", "fgr"])
def test_fast_backward_in_graph_mode_with_return_sequences_off(name, fast_loop_spy):
    layer = Recurrent(build_cell(name, UNITS), return_state=True)
    x = tf.constant(RNG.normal(size=(3, 5, UNITS)).astype("float32"))
    layer.build(x.shape)
    randomize_weights(layer.cell, seed=2)
    graph = tf.function(lambda fast: outputs_and_gradients(layer, x, MASK, False, fast))
    fast = graph(True)
    reference = graph(False)
    assert len(fast_loop_spy) == 1
    for a, b in zip(fast[1], reference[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_fast_backward_takes_gathered_outputs(return_sequences, fast_loop_spy):
    """A gather of the outputs sends IndexedSlices gradients into the hand-written
    backward pass inside a graph (the tagger's character encoder reads each distinct word
    once)."""
    layer = Recurrent(build_cell("lstm", UNITS), return_sequences=return_sequences)
    x = tf.constant(RNG.normal(size=(3, 5, UNITS)).astype("float32"))
    layer.build(x.shape)
    randomize_weights(layer.cell, seed=4)
    rows = tf.constant([2, 0, 2, 1, 2])

    def gradients(fast, gather):
        layer.fast_backward = fast
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, mask=MASK, training=True)
            picked = gather(outputs)
            weights = tf.sin(tf.cast(tf.range(tf.size(picked)), "float32"))
            loss = tf.reduce_sum(picked * tf.reshape(weights, tf.shape(picked)))
        return tape.gradient(loss, [x, *layer.trainable_variables])

    one_hot = tf.one_hot(rows, 3)
    fast = tf.function(gradients)(True, lambda outputs: tf.gather(outputs, rows))
    assert len(fast_loop_spy) == 1, "the hand-written backward pass was not used"
    reference = gradients(False, lambda outputs: tf.tensordot(one_hot, outputs, axes=1))
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(tf.convert_to_tensor(a), tf.convert_to_tensor(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "gru_cho", "mut2"])
def test_zoneout_training_gradient_equals_finite_differences(name):
    """Zoneout noise is drawn before the loop; the backward pass must replay exactly it."""
    cell = build_cell(
        name,
        3,
        zoneout_hidden=0.4,
        seed=5,
        dtype="float64",
        **({"zoneout_cell": 0.3} if "lstm" in name else {}),
    )
    layer = Recurrent(cell, return_sequences=True, dtype="float64")
    x = tf.constant(RNG.normal(size=(2, 4, 3)))
    layer.build(x.shape)
    randomize_weights(cell, seed=4)
    seed_state = cell.seed_generator.state.numpy()
    probe = tf.constant(RNG.normal(size=(2, 4, 3)))

    def loss_fn():
        cell.seed_generator.state.assign(seed_state)  # the same noise at every evaluation
        return tf.reduce_sum(layer(x, training=True) * probe)

    with tf.GradientTape() as tape:
        loss = loss_fn()
    variables = cell.trainable_variables
    gradients = tape.gradient(loss, variables)
    direction = [RNG.normal(size=v.shape) for v in variables]
    analytic = sum(np.sum(g.numpy() * d) for g, d in zip(gradients, direction))
    originals = [v.numpy() for v in variables]
    values = []
    for sign in (1.0, -1.0):
        for v, o, d in zip(variables, originals, direction):
            v.assign(o + sign * 1e-6 * d)
        values.append(float(loss_fn()))
    for v, o in zip(variables, originals):
        v.assign(o)
    np.testing.assert_allclose(analytic, (values[0] - values[1]) / 2e-6, rtol=1e-5, atol=1e-7)


def test_keras_cells_and_unreplayable_steps_use_tensorflows_gradient(fast_loop_spy):
    x = tf.constant(RNG.normal(size=(2, 5, 3)).astype("float32"))
    keras_cell_layer = Recurrent(keras.layers.GRUCell(4), return_sequences=True)

    class NoisyCell(SimpleRNNCell):  # draws noise itself, not through the step hooks
        def step(self, projected_t, states, training=None):
            output, new_states = super().step(projected_t, states, training=training)
            return output + 0.0 * keras.random.uniform(keras.ops.shape(output)), new_states

    noisy_layer = Recurrent(NoisyCell(4), return_sequences=True)
    for layer in (keras_cell_layer, noisy_layer):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x))
        gradients = tape.gradient(loss, layer.trainable_variables)
        assert all(g is not None and np.all(np.isfinite(g)) for g in gradients)
    assert fast_loop_spy == []


def test_inference_and_xla_inference_equal_the_training_forward():
    x = RNG.normal(size=(3, 5, UNITS)).astype("float32")
    layer = Recurrent(build_cell("vanilla", UNITS), return_sequences=True, return_state=True)
    layer.build(x.shape)
    randomize_weights(layer.cell, seed=6)
    xla = Recurrent.from_config({**layer.get_config(), "jit_compile": True})
    xla.build(x.shape)
    xla.cell.set_weights(layer.cell.get_weights())
    assert xla.get_config()["jit_compile"] is True
    inference = layer(x, mask=MASK)
    compiled = tf.function(lambda x: xla(x, mask=MASK))(x)
    with tf.GradientTape():  # recording: the forward of the hand-written backward pass
        training_forward = layer(x, mask=MASK)
    for a, b, c in zip(inference, compiled, training_forward):
        np.testing.assert_allclose(a, c, atol=1e-6)
        np.testing.assert_allclose(b, c, atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "layer_norm_gru", "peephole"])
def test_mixed_bfloat16_runs_bf16_products_with_float32_states(name):
    x = RNG.normal(size=(4, 5, UNITS)).astype("float32")
    reference = Recurrent(build_cell(name, UNITS), return_sequences=True, return_state=True)
    reference.build(x.shape)
    randomize_weights(reference.cell, seed=7)
    mixed = Recurrent(
        build_cell(name, UNITS, dtype="mixed_bfloat16"),
        return_sequences=True,
        return_state=True,
        dtype="mixed_bfloat16",
    )
    mixed.build(x.shape)
    mixed.cell.set_weights(reference.cell.get_weights())
    with tf.GradientTape() as tape:
        outputs, *states = mixed(x, mask=MASK[[0, 1, 1, 0]], training=True)
        loss = tf.reduce_sum(tf.cast(outputs, "float32") ** 2)
    gradients = tape.gradient(loss, mixed.trainable_variables)
    assert outputs.dtype == "bfloat16"
    assert all(g.dtype == "float32" and np.all(np.isfinite(g)) for g in gradients)
    expected, *expected_states = reference(x, mask=MASK[[0, 1, 1, 0]])
    np.testing.assert_allclose(np.asarray(tf.cast(outputs, "float32")), expected, atol=3e-2)
    for state, expected_state in zip(states, expected_states):
        np.testing.assert_allclose(np.asarray(tf.cast(state, "float32")), expected_state, atol=3e-2)


def test_cudnn_kind_is_only_the_standard_lstm_and_gru():
    assert cudnn_kind(LSTMCell(4)) == "lstm"
    assert cudnn_kind(LSTMCell(4, forget_bias=0.0, dropout=0.2)) == "lstm"
    assert cudnn_kind(GRUCell(4)) == "gru"
    not_cudnn = [
        build_cell(name, 4)
        for name in CELL_NAMES
        if name not in ("lstm", "np", "gru")  # "np" is the standard LSTM of Greff et al.
    ] + [
        LSTMCell(4, recurrent_dropout=0.1),
        LSTMCell(4, zoneout_cell=0.1),
        LSTMCell(4, output_dropout=0.1),
        LSTMCell(4, recurrent_weight_dropout=0.1),
        LSTMCell(4, use_bias=False),
        GRUCell(4, zoneout_hidden=0.1),
        keras.layers.LSTMCell(4),
    ]
    assert [cudnn_kind(cell) for cell in not_cudnn] == [None] * len(not_cudnn)
    assert cudnn_kind(build_cell("np", 4)) == "lstm"


def test_cudnn_handoff_decision():
    lstm = LSTMCell(4)
    decide = lambda **kw: cudnn_handoff(  # noqa: E731
        lstm,
        **{"use_cudnn": "auto", "has_mask": False, "gpu_available": True, "recording": True, **kw},
    )
    assert decide() == "lstm"  # training on a GPU
    assert decide(gpu_available=False) is None  # CPU: the suite's loop
    assert decide(recording=False) is None  # predict / export trace: portable graph
    assert decide(has_mask=True) is None  # cuDNN needs right-padded masks: not assumed
    assert decide(use_cudnn=True, has_mask=True, recording=False) == "lstm"
    assert decide(use_cudnn=False) is None
    assert cudnn_handoff(GRUCell(4, layer_norm=True), "auto", False, True, True) is None
    assert cudnn_handoff(GRUCell(4), "auto", False, True, True) == "gru"
    with pytest.raises(ValueError, match="use_cudnn"):
        Recurrent(lstm, use_cudnn="always")


def test_cudnn_handoff_calls_keras_kernel_in_training_only_and_exports_stay_portable(
    monkeypatch, tmp_path
):
    """No GPU in CI: pretend there is one and check which calls reach Keras' cuDNN kernel."""
    calls = []

    def fake_keras_lstm(*args, **kwargs):  # what Keras' backend does without cuDNN
        calls.append(kwargs["kernel"])
        raise NotImplementedError

    from keras.src import backend as keras_backend

    monkeypatch.setattr(loop, "gpu_available", lambda: True)
    monkeypatch.setattr(keras_backend, "lstm", fake_keras_lstm)
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, Recurrent(LSTMCell(4), name="rnn")(inputs))
    x = RNG.normal(size=(2, 5, 3)).astype("float32")
    expected = model(x)
    assert calls == []  # prediction: the suite's loop
    with tf.GradientTape() as tape:
        trained = model(x, training=True)
        loss = tf.reduce_sum(trained)
    assert len(calls) == 1 and calls[0] is model.get_layer("rnn").cell.kernel
    np.testing.assert_allclose(trained, expected, atol=1e-6)  # fell back: same result
    assert all(g is not None for g in tape.gradient(loss, model.trainable_variables))
    model.export(str(tmp_path / "export"), verbose=False)
    assert len(calls) == 1  # the export trace kept the portable loop
    saved = (tmp_path / "export" / "saved_model.pb").read_bytes()
    assert b"Cudnn" not in saved
    reloaded = tf.saved_model.load(str(tmp_path / "export"))
    np.testing.assert_allclose(reloaded.serve(x), expected, atol=1e-6)


def test_recurrent_config_round_trip_keeps_the_speed_options():
    layer = Recurrent(
        GRUCell(3), use_cudnn=False, jit_compile=True, fast_backward=False, return_sequences=True
    )
    clone = Recurrent.from_config(layer.get_config())
    assert clone.use_cudnn is False and clone.jit_compile is True and clone.fast_backward is False
    assert recurrent_module.Recurrent is Recurrent
