"""The diagnostic studies: the measurements against references, and every study on a tiny
setting (its table has the expected columns and finite values, its figure is written)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import layers
from apps.diagnostics.__main__ import main
from apps.diagnostics.config import DiagnosticsConfig
from apps.diagnostics.fitting import Rewind, initial_weights
from apps.diagnostics.model import build_study_cell, regressor
from apps.diagnostics.studies.gradient_flow import decay_per_step, hidden_state_gradients
from tests.apps.test_cli import run_without_tensorflow

REPO = Path(__file__).resolve().parents[2]
TINY = ["--units", "4", "--batch-size", "8", "--valid-examples", "16"]


def _study(tmp_path: Path, study: str, *options: str) -> tuple[dict, dict]:
    run_dir = tmp_path / study
    record = main([study, "--run-dir", str(run_dir), *TINY, *options])
    assert (run_dir / "plots" / f"{study}.png").stat().st_size > 5000
    saved = json.loads((run_dir / "metrics.json").read_text())[study]
    assert saved["table"] == record["table"] and saved["wall_time_s"] >= 0
    return record, saved


def _assert_table(rows: list[dict], columns: list[str], count: int) -> None:
    assert len(rows) == count
    for row in rows:
        assert list(row) == columns
        for value in row.values():
            if isinstance(value, float):
                assert math.isfinite(value), row


# --------------------------------------------------------------------------- gradient flow


def _numpy_gradient_norms(kernel, recurrent, bias, readout, readout_bias, inputs, targets):
    """||dl/dh_t|| per example and step of a tanh RNN read out at T, by the chain rule:
    dl/dh_T = 2 (y - target) v, dl/dh_{t-1} = (dl/dh_t * (1 - h_t^2)) U^T."""
    batch, length, _ = inputs.shape
    states = [np.zeros((batch, recurrent.shape[0]))]
    for step in range(length):
        states.append(np.tanh(inputs[:, step] @ kernel + states[-1] @ recurrent + bias))
    prediction = states[-1] @ readout[:, 0] + readout_bias[0]
    gradient = 2 * (prediction - targets)[:, None] * readout[:, 0][None, :]
    norms = [np.linalg.norm(gradient, axis=1)]
    for step in range(length, 1, -1):
        gradient = (gradient * (1 - states[step] ** 2)) @ recurrent.T
        norms.append(np.linalg.norm(gradient, axis=1))
    return np.array(norms[::-1]).mean(axis=1)  # [T]: t = 1..T


def test_gradient_flow_matches_a_numpy_reference_on_a_tiny_tanh_rnn():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(5, 7, 2)).astype("float32")
    targets = rng.normal(size=5).astype("float32")
    keras.utils.set_random_seed(3)
    model = regressor(layers.SimpleRNNCell(3))
    cell, readout = model.get_layer("recurrent").cell, model.get_layer("readout")
    measured = hidden_state_gradients(cell, readout, inputs, targets)
    weights = [w.astype("float64") for w in cell.get_weights() + readout.get_weights()]
    expected = _numpy_gradient_norms(*weights, inputs.astype("float64"), targets)
    assert measured.shape == (7,)
    np.testing.assert_allclose(measured, expected, rtol=1e-4)


@pytest.mark.parametrize("cell_name", ["lstm", "gru", "cifg"])
def test_gradient_at_the_first_state_equals_that_through_the_recurrent_layer(cell_name):
    """The step-by-step measurement against the suite's `Recurrent` layer (and its own
    backward pass): dl/dh_1 by both ways, for cells with one state and with two."""
    rng = np.random.default_rng(1)
    inputs = tf.constant(rng.normal(size=(4, 6, 2)).astype("float32"))
    targets = tf.constant(rng.normal(size=4).astype("float32"))
    keras.utils.set_random_seed(5)
    model = regressor(build_study_cell(cell_name, 3))
    cell, readout = model.get_layer("recurrent").cell, model.get_layer("readout")
    measured = hidden_state_gradients(cell, readout, inputs, targets)
    _, first = cell(inputs[:, 0], cell.get_initial_state(batch_size=4))
    first = list(first) if isinstance(first, (list, tuple)) else [first]
    with tf.GradientTape() as tape:
        tape.watch(first[0])
        last = model.get_layer("recurrent")(inputs[:, 1:], initial_state=first)
        loss = tf.reduce_sum(tf.square(tf.squeeze(readout(last), -1) - targets))
    through_layer = tf.reduce_mean(tf.norm(tape.gradient(loss, first[0]), axis=-1))
    np.testing.assert_allclose(measured[0], float(through_layer), rtol=1e-4)
    np.testing.assert_allclose(  # and the whole model's prediction is the measured one's
        model(inputs).numpy(), tf.squeeze(readout(last), -1).numpy(), rtol=1e-5, atol=1e-6)


def test_decay_per_step_recovers_a_geometric_decay():
    length = 50
    steps_back = np.arange(length)[::-1]
    assert decay_per_step(3.0 * 0.8 ** steps_back) == pytest.approx(0.8)
    assert decay_per_step(np.full(length, 2.0)) == pytest.approx(1.0)
    underflow = 0.5 ** steps_back
    underflow[:5] = 0.0  # values that underflowed are left out, not fitted as log(0)
    assert decay_per_step(underflow) == pytest.approx(0.5)


@pytest.mark.slow
def test_gradient_flow_study_table(tmp_path):
    record, saved = _study(tmp_path, "gradient-flow", "--flow-cells", "rnn_glorot,lstm",
                           "--flow-length", "6", "--flow-steps", "2")
    _assert_table(record["table"], [
        "cell", "init_decay_per_step", "init_ratio_1_to_T", "trained_decay_per_step",
        "trained_ratio_1_to_T", "valid_mse_before", "valid_mse_after"], 2)
    assert [row["cell"] for row in record["table"]] == ["rnn_glorot", "lstm"]
    assert len(saved["norms"]["lstm"]["initial"]) == 6


# --------------------------------------------------------------------------- exploding


def test_exploding_study_clipping_bounds_what_is_applied(tmp_path):
    clip_norm, clip_value = 0.5, 0.05
    record, saved = _study(tmp_path, "exploding", "--exploding-length", "12",
                           "--exploding-steps", "30", "--exploding-radius", "3",
                           "--exploding-clip-norm", str(clip_norm),
                           "--exploding-clip-value", str(clip_value))
    rows = {row["clipping"]: row for row in record["table"]}
    assert list(rows) == ["none", "norm", "value"]
    assert list(rows["norm"]) == [
        "clipping", "threshold", "steps", "max_gradient_norm", "median_gradient_norm",
        "max_applied_norm", "max_applied_entry", "clipped_steps", "max_loss",
        "final_valid_mse", "diverged"]
    norm_run, value_run = saved["records"]["norm"], saved["records"]["value"]
    # The setting makes raw gradients exceed both thresholds, so clipping is exercised...
    assert rows["norm"]["clipped_steps"] > 0 and rows["value"]["clipped_steps"] > 0
    # ...and the applied (clipped) gradient never exceeds them (float32 round-off aside).
    assert max(norm_run["applied_norm"]) <= clip_norm * (1 + 1e-3)
    assert max(value_run["largest_applied_entry"]) <= clip_value * (1 + 1e-3)
    raw, applied = np.array(norm_run["gradient_norm"]), np.array(norm_run["applied_norm"])
    unclipped = raw < clip_norm
    np.testing.assert_allclose(applied[unclipped], raw[unclipped], rtol=1e-2)
    none = saved["records"]["none"]
    np.testing.assert_allclose(none["applied_norm"], none["gradient_norm"], rtol=1e-2)


# --------------------------------------------------------------------------- training helpers


def test_rewind_trains_exactly_like_a_fresh_model():
    config = DiagnosticsConfig()
    rng = np.random.default_rng(2)
    inputs = rng.random((16, 5, 2)).astype("float32")
    targets = rng.random(16).astype("float32")

    def build(options=None):
        return regressor(build_study_cell("gru", 3), options=options)

    keras.utils.set_random_seed(1)
    reused = build(config)
    rewind = Rewind(reused)
    reused.fit(inputs, targets, batch_size=8, epochs=2, shuffle=False, verbose=0)  # moves on
    rewind(initial_weights(build, 7))
    reused.fit(inputs, targets, batch_size=8, epochs=2, shuffle=False, verbose=0)
    keras.utils.set_random_seed(7)
    fresh = build(config)
    fresh.fit(inputs, targets, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for ours, theirs in zip(reused.get_weights(), fresh.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- other studies


@pytest.mark.slow
def test_memory_length_study_table(tmp_path):
    record, _ = _study(tmp_path, "memory-length", "--memory-cells", "lstm",
                       "--memory-lengths", "3,5", "--memory-seeds", "2", "--memory-steps", "4",
                       "--memory-eval-every", "2", "--copy-length", "2")
    _assert_table(record["table"], ["task", "cell", "T", "success_rate", "mean_final_accuracy",
                                    "mean_steps_to_success"], 4)
    assert [(row["task"], row["T"]) for row in record["table"]] == [
        ("sign_memory", 3), ("sign_memory", 5), ("copy", 3), ("copy", 5)]
    for row in record["table"]:
        assert row["success_rate"] in (0.0, 0.5, 1.0)
        assert 0.0 <= row["mean_final_accuracy"] <= 1.0


@pytest.mark.slow
def test_forget_bias_study_table(tmp_path):
    record, saved = _study(tmp_path, "forget-bias", "--forget-bias-seeds", "2",
                           "--forget-bias-length", "6", "--forget-bias-steps", "4",
                           "--forget-bias-lm-steps", "4", "--forget-bias-eval-every", "2",
                           "--lm-units", "8", "--lm-bptt", "5", "--lm-train-chars", "2000",
                           "--lm-valid-chars", "400")
    _assert_table(record["table"], ["task", "metric", "forget_bias", "seeds", "final_mean",
                                    "final_std", "final_best", "final_worst"], 4)
    assert [row["forget_bias"] for row in record["table"]] == [0.0, 1.0, 0.0, 1.0]
    assert len(saved["curves"]["adding"]["lstm"]) == 2  # a curve per seed
    assert [step for step, _ in saved["curves"]["adding"]["lstm"][0]] == [0, 2, 4]


def test_tbptt_study_table(tmp_path):
    record, _ = _study(tmp_path, "tbptt", "--tbptt-windows", "2,5", "--tbptt-tokens", "200",
                       "--tbptt-evaluations", "2", "--lm-units", "8", "--lm-train-chars",
                       "2000", "--lm-valid-chars", "400")
    _assert_table(record["table"], ["window_k", "steps", "chars_seen", "valid_perplexity",
                                    "valid_nats_per_char", "key_nats_per_char",
                                    "chars_per_second"], 2)
    steps = {row["window_k"]: row["steps"] for row in record["table"]}
    assert steps == {2: 200 // (8 * 2), 5: 200 // (8 * 5)}  # equal characters seen


@pytest.mark.slow
def test_batching_study_table(tmp_path):
    record, _ = _study(tmp_path, "batching", "--batching-strategies", "shuffle,src_tgt",
                       "--batching-steps", "4", "--translation-pairs", "64",
                       "--translation-max-length", "6", "--translation-units", "8",
                       "--translation-batch-size", "8")
    _assert_table(record["table"], ["strategy", "padded_fraction", "batches_per_epoch", "steps",
                                    "tokens_per_second", "train_seconds", "valid_loss"], 2)
    padding = {row["strategy"]: row["padded_fraction"] for row in record["table"]}
    assert padding["src_tgt"] < padding["shuffle"]  # sorting pads less


# --------------------------------------------------------------------------- command line


def test_help_and_option_errors_answer_without_tensorflow(tmp_path):
    stdout = run_without_tensorflow("diagnostics", [["--help"], ["tbptt", "--help"], ["tbptt", "--tbptt-windows", "0"]])
    assert "memory-length" in stdout and "--flow-cells" in stdout
    assert "--lr-schedule" not in stdout  # harness options no study uses stay hidden


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--memory-cells", "lstm,foo"], "--memory-cells must be one of rnn"),
        (["--tbptt-windows", "35,0"], "--tbptt-windows must be >= 1; got '35,0'"),
        (["--memory-accuracy", "1.5"], "--memory-accuracy must be > 0 and <= 1"),
        (["--memory-eval-every", "50", "--memory-steps", "10"], "no run would ever be checked"),
        (["--flow-cells", ""], "--flow-cells is empty"),
    ],
)
def test_a_bad_option_is_one_line_before_any_work(argv, message, tmp_path):
    with pytest.raises(ValueError) as error:
        main(["memory-length", "--run-dir", str(tmp_path / "run"), *argv])
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_every_option_is_declared_and_the_defaults_are_valid():
    import dataclasses

    from apps.common.config import _metadata, check_config

    for field in dataclasses.fields(DiagnosticsConfig):
        assert _metadata(DiagnosticsConfig, field.name)["help"], field.name
    check_config(DiagnosticsConfig())
