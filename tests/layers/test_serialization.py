"""`.keras` round trips and SavedModel export of models holding every cell of the suite."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from layers import (
    CELL_NAMES,
    GRUCell,
    LSTMCell,
    MUTCell,
    NormStabilizer,
    Recurrent,
    SimpleRNNCell,
    build_cell,
)
from tests.layers.numpy_reference import randomize_weights

RNG = np.random.default_rng(10)


def every_cell_model():
    """One model holding every cell class, in Recurrent, keras RNN and Bidirectional."""
    inputs = keras.Input((None, 4))
    x = keras.layers.Masking(0.0)(inputs)
    x = Recurrent(SimpleRNNCell(4, activation="relu", identity_init=True), return_sequences=True)(x)
    lstm = LSTMCell(4, peepholes=True, full_gate_recurrence=True, layer_norm=True, zoneout_cell=0.1)
    x = keras.layers.Bidirectional(Recurrent(lstm, return_sequences=True), merge_mode="sum")(x)
    x = keras.layers.RNN(GRUCell(4, reset_after=False, layer_norm=True), return_sequences=True)(x)
    x = Recurrent(MUTCell(4, variant=1, dropout=0.2, recurrent_weight_dropout=0.2),
                  return_sequences=True, go_backwards=True)(x)
    x = NormStabilizer(beta=0.5)(x)
    x = Recurrent(build_cell("cifg", 3, recurrent_dropout=0.1, output_dropout=0.1))(x)
    outputs = keras.layers.Dense(2)(x)
    model = keras.Model(inputs, outputs)
    for layer in model.layers:
        for weights in layer.weights:
            weights.assign(RNG.normal(scale=0.5, size=weights.shape).astype("float32"))
    return model


def padded_inputs():
    x = RNG.normal(size=(3, 6, 4)).astype("float32")
    x[1, 4:] = 0.0  # masked by Masking(0.0)
    return x


@pytest.mark.parametrize("name", CELL_NAMES)
def test_keras_file_round_trip_for_every_cell(name, tmp_path):
    inputs = keras.Input((None, 4))
    outputs = Recurrent(build_cell(name, 4, dropout=0.1, zoneout_hidden=0.1), return_sequences=True)(inputs)
    model = keras.Model(inputs, outputs)
    randomize_weights(model.layers[-1].cell, seed=1)
    x = padded_inputs()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[-1].cell) is type(model.layers[-1].cell)
    assert loaded.layers[-1].cell.get_config() == model.layers[-1].cell.get_config()
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_keras_file_round_trip_of_a_model_holding_every_cell(tmp_path):
    model = every_cell_model()
    x = padded_inputs()
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)
    assert len(loaded.losses) == 1


@pytest.mark.slow
def test_saved_model_export_reloads_in_a_fresh_process_without_the_classes(tmp_path):
    model = every_cell_model()
    x = padded_inputs()
    expected = np.asarray(model(x))
    model.export(str(tmp_path / "export"), verbose=False)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        "assert 'layers' not in sys.modules\n"
        f"reloaded = tf.saved_model.load({str(tmp_path / 'export')!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "outputs = [reloaded.serve(x).numpy()]\n"
        "outputs.append(reloaded.serve(x[:2, :5]).numpy())  # other batch and length\n"
        "assert not any(m.startswith('layers') for m in sys.modules)\n"
        "print(json.dumps([o.tolist() for o in outputs]))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env,
        cwd=str(tmp_path), timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    full, shorter = (np.array(o) for o in json.loads(result.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(full, expected, atol=1e-5)
    np.testing.assert_allclose(shorter, model(x[:2, :5]), atol=1e-5)
