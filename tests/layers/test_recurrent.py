"""Recurrent: masks, directions, initial and stateful states, Bidirectional, gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import CELL_NAMES, LSTMCell, Recurrent, build_cell
from tests.layers.numpy_reference import randomize_weights

RNG = np.random.default_rng(6)
UNITS = 4  # == input width, so that MUT1/MUT2 fit


def make_layer(name, input_dim=UNITS, seed=0, **layer_kwargs):
    cell = build_cell(name, UNITS)
    layer = Recurrent(cell, **layer_kwargs)
    layer.build((None, None, input_dim))
    randomize_weights(cell, seed=seed)
    return layer


def clone_with(layer, batch_size=None, **changes):
    config = {**layer.get_config(), **changes}
    twin = Recurrent.from_config(config)
    twin.build((batch_size, None, UNITS))
    twin.cell.set_weights(layer.cell.get_weights())
    return twin


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_post_padded_equals_unpadded(name, go_backwards):
    lengths = [6, 4, 1, 0]
    x = RNG.normal(size=(4, 6, UNITS)).astype("float32")  # padding holds junk, not zeros
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    layer = make_layer(name, return_sequences=True, return_state=True, go_backwards=go_backwards)
    outputs, *states = layer(x, mask=mask)
    outputs, states = np.asarray(outputs), [np.asarray(s) for s in states]
    assert np.all(np.isfinite(outputs)) and all(np.all(np.isfinite(s)) for s in states)
    for row, length in enumerate(lengths):
        if length == 0:  # all-masked row: zeros, no NaN
            assert np.all(outputs[row] == 0) and all(np.all(s[row] == 0) for s in states)
            continue
        ref_outputs, *ref_states = layer(x[row : row + 1, :length])
        for state, ref_state in zip(states, ref_states):
            np.testing.assert_allclose(state[row], ref_state[0], atol=1e-5)
        ref_outputs = np.asarray(ref_outputs)[0]
        if go_backwards:  # processing order: padded steps come first and output zeros
            np.testing.assert_allclose(outputs[row, 6 - length :], ref_outputs, atol=1e-5)
            assert np.all(outputs[row, : 6 - length] == 0)
        else:
            np.testing.assert_allclose(outputs[row, :length], ref_outputs, atol=1e-5)
            assert np.all(outputs[row, length:] == 0)
    last = clone_with(layer, return_sequences=False, return_state=False)(x, mask=mask)
    for row in range(len(lengths)):
        # The last output is the one of the last valid step: the final hidden state.
        np.testing.assert_allclose(last[row], states[0][row], atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "fgr", "gru", "mut3", "rnn"])
def test_masked_steps_carry_the_state(name):
    x = RNG.normal(size=(1, 6, UNITS)).astype("float32")
    keep = np.array([[True, False, False, True, True, False]])
    layer = make_layer(name, return_sequences=True, return_state=True)
    outputs, *states = layer(x, mask=keep)
    ref_outputs, *ref_states = layer(x[:, keep[0]])
    for state, ref_state in zip(states, ref_states):
        np.testing.assert_allclose(state, ref_state, atol=1e-5)
    np.testing.assert_allclose(np.asarray(outputs)[:, keep[0]], ref_outputs, atol=1e-5)
    assert np.all(np.asarray(outputs)[:, ~keep[0]] == 0)


def test_embedding_mask_zero_in_a_functional_model():
    tokens = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(20, UNITS, mask_zero=True)(tokens)
    outputs = Recurrent(build_cell("lstm", UNITS))(embedded)
    model = keras.Model(tokens, outputs)
    padded = np.array([[3, 5, 7, 0, 0], [2, 0, 0, 0, 0]])
    result = model(padded)
    np.testing.assert_allclose(result[0], model(padded[:1, :3])[0], atol=1e-5)
    np.testing.assert_allclose(result[1], model(padded[1:, :1])[0], atol=1e-5)


def test_initial_state_continues_a_sequence_and_stateful_equals_full_run():
    x = RNG.normal(size=(2, 8, UNITS)).astype("float32")
    layer = make_layer("fgr", return_sequences=True, return_state=True)
    full, *full_states = layer(x)
    first, *states = layer(x[:, :5])
    second, *second_states = layer(x[:, 5:], initial_state=states)
    np.testing.assert_allclose(np.concatenate([first, second], 1), full, atol=1e-5)
    for a, b in zip(second_states, full_states):
        np.testing.assert_allclose(a, b, atol=1e-5)

    stateful = clone_with(layer, batch_size=2, stateful=True)
    chunks = [stateful(x[:, i : i + 3])[0] for i in range(0, 8, 3)]  # truncated BPTT
    np.testing.assert_allclose(np.concatenate(chunks, 1), full, atol=1e-5)
    for variable, state in zip(stateful.states, full_states):
        np.testing.assert_allclose(variable.numpy(), state, atol=1e-5)
    stateful.reset_state()
    np.testing.assert_allclose(stateful(x[:, :5])[0], first, atol=1e-5)
    stateful.reset_states()
    assert all(np.all(v.numpy() == 0) for v in stateful.states)


def test_stateful_model_needs_a_fixed_batch_size():
    with pytest.raises(ValueError, match="fixed batch size"):
        Recurrent(LSTMCell(3), stateful=True)(keras.Input((None, 2)))
    model = keras.Sequential(
        [keras.Input(batch_shape=(2, None, 3)), Recurrent(LSTMCell(3), stateful=True)]
    )
    x = RNG.normal(size=(2, 4, 3)).astype("float32")
    first = model(x)
    assert not np.allclose(model(x), first)  # the state carried over
    model.layers[0].reset_state()
    np.testing.assert_allclose(model(x), first, atol=1e-6)


def test_go_backwards_equals_reversed_input():
    x = RNG.normal(size=(2, 5, UNITS)).astype("float32")
    layer = make_layer("gru", return_sequences=True)
    backwards = clone_with(layer, go_backwards=True)
    np.testing.assert_allclose(backwards(x), layer(x[:, ::-1]), atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "layer_norm_gru", "mut1"])
def test_inside_bidirectional_with_mask_and_states(name):
    x = RNG.normal(size=(3, 5, UNITS)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool)
    layer = Recurrent(build_cell(name, UNITS), return_sequences=True, return_state=True)
    bidirectional = keras.layers.Bidirectional(layer)
    outputs, *states = bidirectional(x, mask=mask)
    forward, backward = bidirectional.forward_layer, bidirectional.backward_layer
    assert backward.go_backwards and not forward.go_backwards
    assert outputs.shape == (3, 5, 2 * UNITS) and len(states) == 2 * len(layer.state_size)
    assert np.all(np.isfinite(outputs))
    # Row 1 equals running both directions on its unpadded 3 steps.
    ref_forward = forward(x[1:2, :3])[0]
    ref_backward = backward(x[1:2, :3])[0][:, ::-1]
    np.testing.assert_allclose(outputs[1, :3, :UNITS], ref_forward[0], atol=1e-5)
    np.testing.assert_allclose(outputs[1, :3, UNITS:], ref_backward[0], atol=1e-5)
    assert np.all(outputs[2] == 0)
    clone = keras.layers.Bidirectional.from_config(bidirectional.get_config())
    assert isinstance(clone.forward_layer, Recurrent)
    assert clone.forward_layer.cell.get_config()["units"] == UNITS


def test_keras_cells_also_run_in_recurrent():
    x = RNG.normal(size=(2, 5, 3)).astype("float32")
    keras_layer = keras.layers.LSTM(4, return_sequences=True)
    expected = keras_layer(x)
    layer = Recurrent(keras.layers.LSTMCell(4), return_sequences=True)
    layer.build(x.shape)
    layer.cell.set_weights(keras_layer.cell.get_weights())
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)


def test_invalid_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="cell"):
        Recurrent("lstm")
    with pytest.raises(ValueError, match="initial_state"):
        Recurrent(LSTMCell(3))(np.zeros((1, 2, 3), "float32"), initial_state=[np.zeros((1, 3))])


@pytest.mark.parametrize("name", CELL_NAMES)
def test_gradients_are_finite_and_equal_finite_differences(name):
    """Directional derivatives of a float64 loss against central differences."""
    cell = build_cell(name, 3, dtype="float64")
    layer = Recurrent(cell, return_sequences=True, return_state=True, dtype="float64")
    x = tf.constant(RNG.normal(size=(2, 4, 3)))
    mask = tf.constant([[True, True, True, True], [True, True, False, False]])
    layer.build(x.shape)
    randomize_weights(cell, seed=11)
    probes = None

    def loss_fn():
        outputs, *states = layer(x, mask=mask)
        tensors = [outputs, *states]
        nonlocal probes
        if probes is None:
            probes = [tf.constant(RNG.normal(size=t.shape)) for t in tensors]
        return sum(tf.reduce_sum(t * p) for t, p in zip(tensors, probes))

    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_fn()
    variables = cell.trainable_variables
    gradients = tape.gradient(loss, [*variables, x])
    assert all(g is not None and np.all(np.isfinite(g)) for g in gradients)
    for _ in range(2):
        directions = [RNG.normal(size=v.shape) for v in variables]
        analytic = sum(np.sum(g.numpy() * d) for g, d in zip(gradients, directions))
        eps = 1e-6
        originals = [v.numpy() for v in variables]
        values = []
        for sign in (1.0, -1.0):
            for v, o, d in zip(variables, originals, directions):
                v.assign(o + sign * eps * d)
            values.append(float(loss_fn()))
        for v, o in zip(variables, originals):
            v.assign(o)
        numeric = (values[0] - values[1]) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_inputs_are_projected_once_for_the_whole_sequence_before_the_loop():
    cell = build_cell("lstm", UNITS)
    layer = Recurrent(cell, return_sequences=True)
    x = RNG.normal(size=(2, 7, UNITS)).astype("float32")
    layer.build(x.shape)
    calls = {"project": [], "step": 0}
    project, step = cell.project_inputs, cell.step

    def spy_project(inputs, **kwargs):
        calls["project"].append((tuple(inputs.shape), kwargs.get("time_major")))
        return project(inputs, **kwargs)

    def spy_step(*args, **kwargs):
        calls["step"] += 1
        return step(*args, **kwargs)

    cell.project_inputs, cell.step = spy_project, spy_step
    layer(x)
    assert calls["project"] == [((7, 2, UNITS), True)]
    # One trace that plans the loop (which products, which random draws), then the eager
    # tf.while_loop runs the body once per step.
    assert calls["step"] == 1 + 7


def test_cells_work_in_keras_rnn_inside_bidirectional():
    x = RNG.normal(size=(2, 5, UNITS)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    bidirectional = keras.layers.Bidirectional(
        keras.layers.RNN(build_cell("vanilla", UNITS), return_sequences=True)
    )
    outputs = bidirectional(x, mask=mask)
    suite = keras.layers.Bidirectional(Recurrent(build_cell("vanilla", UNITS), return_sequences=True))
    suite.build(x.shape)
    suite.forward_layer.cell.set_weights(bidirectional.forward_layer.cell.get_weights())
    suite.backward_layer.cell.set_weights(bidirectional.backward_layer.cell.get_weights())
    np.testing.assert_allclose(suite(x, mask=mask), outputs, atol=1e-5)
