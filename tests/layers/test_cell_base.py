"""Shared cell machinery: the two-part cell API, variational dropout, zoneout, weight drop."""

import keras
import numpy as np
import pytest

from layers import CELL_NAMES, GRUCell, LSTMCell, Recurrent, SimpleRNNCell, build_cell, layer_norm
from tests.layers.numpy_reference import layer_norm as reference_layer_norm
from tests.layers.numpy_reference import randomize_weights, run_reference

RNG = np.random.default_rng(8)


def linear_rnn(units, kernel, recurrent, **kwargs):
    """A linear Elman cell with given matrices (zero bias) inside a Recurrent layer."""
    cell = SimpleRNNCell(units, activation="linear", seed=1234, **kwargs)
    layer = Recurrent(cell, return_sequences=True, return_state=True)
    layer.build((None, None, units))
    cell.set_weights([kernel, recurrent, np.zeros(units, "float32")])
    return layer


@pytest.mark.parametrize("name", CELL_NAMES)
def test_call_is_step_of_project_inputs_and_projection_is_hoistable(name):
    cell = build_cell(name, 4, dropout=0.3, seed=3)
    x = RNG.normal(size=(2, 5, 4)).astype("float32")
    cell.build((None, 4))
    randomize_weights(cell, seed=2)
    states = [keras.ops.convert_to_tensor(RNG.normal(size=(2, s)).astype("float32"))
              for s in np.atleast_1d(cell.state_size)]
    whole = cell.project_inputs(x, training=True)
    assert whole.shape == (2, 5, cell.projection_size)
    time_major = cell.project_inputs(np.transpose(x, (1, 0, 2)), training=True, time_major=True)
    np.testing.assert_allclose(np.transpose(time_major, (1, 0, 2)), whole, atol=1e-6)
    for t in range(5):  # one input mask for the whole sequence
        np.testing.assert_allclose(cell.project_inputs(x[:, t], training=True), whole[:, t], atol=1e-6)
    output, new_states = cell(x[:, 0], states, training=True)
    step_output, step_states = cell.step(whole[:, 0], states, training=True)
    np.testing.assert_allclose(output, step_output, atol=1e-6)
    for a, b in zip(new_states, step_states):
        np.testing.assert_allclose(a, b, atol=1e-6)
    cell.reset_dropout_masks()


@pytest.mark.parametrize("use_keras_rnn", [False, True])
def test_input_dropout_one_mask_per_sequence(use_keras_rnn):
    units = 6
    cell = SimpleRNNCell(units, activation="linear", dropout=0.5, seed=5)
    layer = (keras.layers.RNN(cell, return_sequences=True) if use_keras_rnn
             else Recurrent(cell, return_sequences=True))
    layer.build((None, None, units))
    cell.set_weights([np.eye(units), np.zeros((units, units)), np.zeros(units)])
    x = np.ones((8, 5, units), "float32")
    first = np.asarray(layer(x, training=True))
    assert set(np.unique(first)) <= {0.0, 2.0}
    for t in range(1, 5):  # same mask at every step of a sequence
        np.testing.assert_array_equal(first[:, t], first[:, 0])
    assert len({tuple(row) for row in first[:, 0]}) > 1  # different across sequences
    second = np.asarray(layer(x, training=True))
    assert not np.array_equal(first, second)  # new masks for the next batch
    np.testing.assert_array_equal(layer(x, training=False), x)
    assert cell._dropout_mask is None  # masks do not leak out of the call


def test_recurrent_dropout_one_mask_per_sequence():
    units = 6
    layer = linear_rnn(units, np.eye(units), np.eye(units), recurrent_dropout=0.5)
    x = np.zeros((8, 5, units), "float32")
    x[:, 0] = 1.0
    outputs, _ = layer(x, training=True)
    outputs = np.asarray(outputs)
    mask = outputs[:, 1]  # h_2 = (h_1 * m) I = m
    assert set(np.unique(mask)) <= {0.0, 2.0} and len({tuple(r) for r in mask}) > 1
    for t in range(1, 5):  # h_t = m^(t-1): the same m at every step
        np.testing.assert_allclose(outputs[:, t], mask ** t, atol=1e-5)
    np.testing.assert_allclose(layer(x, training=False)[0], np.ones((8, 5, units)), atol=1e-6)


def test_output_dropout_drops_outputs_not_states():
    units = 6
    layer = linear_rnn(units, np.eye(units), np.zeros((units, units)), output_dropout=0.5)
    x = np.ones((8, 5, units), "float32")
    outputs, state = layer(x, training=True)
    outputs = np.asarray(outputs)
    assert set(np.unique(outputs)) <= {0.0, 2.0} and len({tuple(r) for r in outputs[:, 0]}) > 1
    for t in range(1, 5):
        np.testing.assert_array_equal(outputs[:, t], outputs[:, 0])
    np.testing.assert_array_equal(state, np.ones((8, units)))


def test_recurrent_weight_dropout_one_mask_per_sequence_shared_by_the_batch():
    units = 8
    layer = linear_rnn(units, np.eye(units), np.eye(units), recurrent_weight_dropout=0.5)
    x = np.zeros((4, 5, units), "float32")
    x[:, 0] = 1.0
    outputs = np.asarray(layer(x, training=True)[0])
    diagonal = outputs[0, 1]  # h_2 = h_1 (I * M) = diag(M)
    assert set(np.unique(diagonal)) <= {0.0, 2.0}
    for t in range(1, 5):
        np.testing.assert_allclose(outputs[:, t], np.broadcast_to(diagonal ** t, (4, units)), atol=1e-5)
    masks = {tuple(np.asarray(layer(x, training=True)[0])[0, 1]) for _ in range(4)}
    assert len(masks | {tuple(diagonal)}) > 1  # a new mask for each sequence batch
    np.testing.assert_allclose(layer(x, training=False)[0][:, 1:], np.ones((4, 4, units)), atol=1e-6)


def test_zoneout_training_keeps_or_updates_each_unit():
    units, rate = 6, 0.5
    cell = SimpleRNNCell(units, zoneout_hidden=rate, seed=9)
    layer = Recurrent(cell, return_sequences=True)
    x = RNG.normal(size=(8, 6, 3)).astype("float32")
    layer.build(x.shape)
    randomize_weights(cell, seed=4)
    kernel, recurrent, bias = cell.get_weights()
    h = np.asarray(layer(x, training=True))
    kept = updated = 0
    previous = np.zeros((8, units))
    for t in range(6):
        candidate = np.tanh(x[:, t] @ kernel + previous @ recurrent + bias)
        is_kept = np.isclose(h[:, t], previous, atol=1e-6)
        is_updated = np.isclose(h[:, t], candidate, atol=1e-5)
        assert np.all(is_kept | is_updated)
        kept += is_kept.sum()
        updated += is_updated.sum()
        previous = h[:, t]
    assert kept > 0.3 * h.size and updated > 0.3 * h.size


@pytest.mark.parametrize("cell_class, kwargs", [
    (SimpleRNNCell, {"zoneout_hidden": 0.4}),
    (LSTMCell, {"zoneout_cell": 0.5, "zoneout_hidden": 0.1, "peepholes": True}),
    (GRUCell, {"zoneout_hidden": 0.6}),
])
def test_zoneout_inference_is_its_expectation_and_deterministic(cell_class, kwargs):
    cell = cell_class(4, **kwargs)
    layer = Recurrent(cell, return_sequences=True)
    x = RNG.normal(size=(3, 5, 3)).astype("float32")
    layer.build(x.shape)
    randomize_weights(cell, seed=5)
    result = layer(x, training=False)
    np.testing.assert_allclose(result, run_reference(cell, x)[0], atol=1e-5)
    np.testing.assert_array_equal(result, layer(x, training=False))


def test_invalid_rates_raise():
    with pytest.raises(ValueError, match="dropout"):
        LSTMCell(3, dropout=1.0)
    with pytest.raises(ValueError, match="zoneout_cell"):
        GRUCell(3, zoneout_cell=0.1)


def test_layer_norm_helper_matches_the_formula_and_handles_zeros():
    z = RNG.normal(size=(3, 8)).astype("float32")
    gain = RNG.normal(size=8).astype("float32")
    shift = RNG.normal(size=8).astype("float32")
    np.testing.assert_allclose(layer_norm(z, gain, shift), reference_layer_norm(z, gain, shift), atol=1e-5)
    zeros = np.asarray(layer_norm(np.zeros((2, 8), "float32"), gain, shift))
    np.testing.assert_allclose(zeros, np.broadcast_to(shift, (2, 8)), atol=1e-6)
