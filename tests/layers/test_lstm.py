"""LSTMCell: every Greff et al. 2017 variant and the layer-norm LSTM against NumPy; Keras equality."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import GREFF_VARIANTS, LSTMCell, Recurrent, build_cell
from tests.layers.numpy_reference import randomize_weights, run_reference

RNG = np.random.default_rng(2)

CONFIGS = {
    "lstm": {},
    **{name: dict(kwargs) for name, kwargs in GREFF_VARIANTS.items()},
    "layer_norm_lstm": {"layer_norm": True},
    "layer_norm_peephole_fgr": {**GREFF_VARIANTS["fgr"], "layer_norm": True},
    "cifg_fgr_noaf": {**GREFF_VARIANTS["cifg"], "full_gate_recurrence": True, "output_activation": None},
    "nig_nog_fgr": {**GREFF_VARIANTS["nig"], "output_gate": False, "full_gate_recurrence": True},
    "no_bias_forget_bias_0": {"use_bias": False, "forget_bias": 0.0},
    "zoneout_inference": {"zoneout_cell": 0.3, "zoneout_hidden": 0.2},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_numpy_reference(name):
    x = RNG.normal(size=(3, 5, 3)).astype("float32")
    cell = LSTMCell(4, **CONFIGS[name])
    layer = Recurrent(cell, return_sequences=True, return_state=True)
    layer.build(x.shape)
    randomize_weights(cell, seed=hash(name) % 1000)
    outputs, *states = layer(x)
    ref_outputs, ref_states = run_reference(cell, x)
    np.testing.assert_allclose(outputs, ref_outputs, atol=1e-5)
    assert len(states) == len(ref_states)
    for state, ref_state in zip(states, ref_states):
        np.testing.assert_allclose(state, ref_state, atol=1e-5)
    # The same cell inside keras.layers.RNN gives the same result.
    keras_rnn = keras.layers.RNN(cell, return_sequences=True)
    np.testing.assert_allclose(keras_rnn(x), outputs, atol=1e-5)


def test_greff_variants_keys_and_switches():
    vanilla = GREFF_VARIANTS["vanilla"]
    assert vanilla["peepholes"] is True
    expected_change = {
        "nig": ("input_gate", False),
        "nfg": ("forget_gate", False),
        "nog": ("output_gate", False),
        "niaf": ("input_activation", None),
        "noaf": ("output_activation", None),
        "np": ("peepholes", False),
        "cifg": ("coupled_input_forget", True),
        "fgr": ("full_gate_recurrence", True),
    }
    for name, (key, value) in expected_change.items():
        variant = GREFF_VARIANTS[name]
        assert variant[key] == value
        assert {k: v for k, v in variant.items() if k != key} == {
            k: v for k, v in vanilla.items() if k != key
        }


def test_weight_layout_and_order():
    cell = LSTMCell(4, peepholes=True, full_gate_recurrence=True, layer_norm=True)
    cell.build((None, 3))
    names = [v.name for v in cell.weights]
    assert names[:3] == ["kernel", "recurrent_kernel", "bias"]
    assert names[3:] == [
        "input_peephole", "forget_peephole", "output_peephole", "gate_recurrent_kernel",
        "input_norm_gain", "recurrent_norm_gain", "cell_norm_gain", "cell_norm_shift",
    ]
    assert cell.kernel.shape == (3, 16) and cell.gate_recurrent_kernel.shape == (12, 12)
    assert cell.state_size == [4, 4, 12]
    # CIFG and NIG have no weights for the missing gate.
    cifg = build_cell("cifg", 4)
    cifg.build((None, 3))
    assert cifg.kernel.shape == (3, 12)
    assert [v.name for v in cifg.weights][3:] == ["input_peephole", "output_peephole"]


def test_forget_bias_initialisation():
    cell = LSTMCell(3, forget_bias=2.5)
    cell.build((None, 2))
    np.testing.assert_array_equal(cell.bias.numpy(), [0] * 3 + [2.5] * 3 + [0] * 6)
    keras_cell = keras.layers.LSTMCell(3)
    keras_cell.build((None, 2))
    default = LSTMCell(3)
    default.build((None, 2))
    np.testing.assert_array_equal(default.bias.numpy(), keras_cell.bias.numpy())


def test_invalid_switches_raise():
    with pytest.raises(ValueError, match="coupled_input_forget"):
        LSTMCell(3, coupled_input_forget=True, input_gate=False)
    with pytest.raises(ValueError, match="at least one gate"):
        LSTMCell(3, input_gate=False, forget_gate=False, output_gate=False,
                 full_gate_recurrence=True)


def test_equals_keras_lstm_with_copied_weights():
    x = RNG.normal(size=(2, 7, 3)).astype("float32")
    keras_layer = keras.layers.LSTM(5, return_sequences=True, return_state=True)
    expected = keras_layer(x)
    cell = LSTMCell(5)
    layer = Recurrent(cell, return_sequences=True, return_state=True)
    layer.build(x.shape)
    cell.set_weights(keras_layer.cell.get_weights())
    for ours, theirs in zip(layer(x), expected):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_keras_lstm_checkpoint_loads_into_suite_cell(tmp_path):
    x = RNG.normal(size=(2, 4, 3)).astype("float32")
    keras_model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(5)])
    expected = keras_model(x)
    path = tf.train.Checkpoint(model=keras_model).write(str(tmp_path / "ckpt"))
    suite_model = keras.Sequential([keras.Input((None, 3)), Recurrent(LSTMCell(5))])
    tf.train.Checkpoint(model=suite_model).read(path).assert_existing_objects_matched()
    np.testing.assert_allclose(suite_model(x), expected, atol=1e-5)
