"""exploding: exploding gradients and clipping (Pascanu, Mikolov & Bengio 2013).

A tanh RNN whose recurrent matrix starts as an orthogonal matrix times `radius` (so its
spectral radius is `radius`) learns the adding problem with plain SGD three times from
the same weights and the same batches: without clipping, clipping the global gradient
norm, and clipping each gradient entry. Every step records the loss, the global norm of
the raw gradient and the norm of the gradient the optimizer actually applied, read from
the change of the weights (SGD without momentum moves them by learning rate x the
clipped gradient), so the table shows what clipping did, not what it was asked to do.
"""

from __future__ import annotations

import logging
import types

import keras
import numpy as np
import tensorflow as tf

from apps.common.optimizer import make_optimizer
from apps.common.plots import Panel, plot_panels
from apps.diagnostics.data import HELDOUT_SEED_OFFSET, adding_arrays
from apps.diagnostics.model import build_study_cell, regressor
from apps.diagnostics.report import StudyResult

MODES = ("none", "norm", "value")


def _optimizer(config, mode: str):
    options = types.SimpleNamespace(
        optimizer="sgd", momentum=0.0, learning_rate=config.exploding_learning_rate,
        clip_norm=config.exploding_clip_norm if mode == "norm" else 0.0,
        clip_value=config.exploding_clip_value if mode == "value" else 0.0,
    )
    return make_optimizer(options)


def train_recording(model: keras.Model, optimizer, inputs, targets, batch_size: int,
                    learning_rate: float) -> dict[str, np.ndarray]:
    """Trains on consecutive batches of `inputs`; per step: `loss`, `gradient_norm` (raw,
    global), `largest_entry` (max |entry| of the raw gradient), and of the gradient the
    optimizer applied (the weights' change / learning rate) `applied_norm` and
    `largest_applied_entry`. A non-finite loss ends the run."""
    variables = model.trainable_variables
    optimizer.build(variables)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        gradients = tape.gradient(loss, variables)
        before = [tf.identity(variable) for variable in variables]
        optimizer.apply(gradients, variables)
        applied = [(b - v) / learning_rate for v, b in zip(variables, before)]
        return (loss, tf.linalg.global_norm(gradients), _largest_entry(gradients),
                tf.linalg.global_norm(applied), _largest_entry(applied))

    records = {name: [] for name in ("loss", "gradient_norm", "largest_entry", "applied_norm",
                                     "largest_applied_entry")}
    for start in range(0, len(inputs) - batch_size + 1, batch_size):
        values = step(inputs[start:start + batch_size], targets[start:start + batch_size])
        for name, value in zip(records, values):
            records[name].append(float(value))
        if not np.isfinite(records["loss"][-1]):
            break
    return {name: np.array(values) for name, values in records.items()}


def _largest_entry(tensors) -> tf.Tensor:
    return tf.reduce_max([tf.reduce_max(tf.abs(tensor)) for tensor in tensors])


def run(ctx) -> StudyResult:
    config = ctx.config
    length, batch = config.exploding_length, config.batch_size
    train_x, train_y = adding_arrays(config.exploding_steps * batch, length, config.seed)
    valid_x, valid_y = adding_arrays(config.valid_examples, length,
                                     config.seed + HELDOUT_SEED_OFFSET)
    thresholds = {"none": None, "norm": config.exploding_clip_norm,
                  "value": config.exploding_clip_value}
    rows, records = [], {}
    for mode in MODES:
        logging.info("exploding: clipping %s", mode)
        keras.utils.set_random_seed(config.seed)  # the same initial weights in every mode
        orthogonal = keras.initializers.Orthogonal(gain=config.exploding_radius)
        cell = build_study_cell("rnn", config.units, recurrent_initializer=orthogonal)
        model = regressor(cell)
        spectral_radius = _spectral_radius(cell)
        record = train_recording(model, _optimizer(config, mode), train_x, train_y, batch,
                                 config.exploding_learning_rate)
        records[mode] = record
        finite = np.isfinite(record["loss"][-1])
        valid_mse = (float(np.mean((model.predict(valid_x, verbose=0) - valid_y) ** 2))
                     if finite else float("nan"))
        clipped = {"none": np.zeros_like(record["loss"], bool),
                   "norm": record["gradient_norm"] > config.exploding_clip_norm,
                   "value": record["largest_entry"] > config.exploding_clip_value}[mode]
        rows.append({
            "clipping": mode,
            "threshold": thresholds[mode],
            "steps": len(record["loss"]),
            "max_gradient_norm": float(np.max(record["gradient_norm"])),
            "median_gradient_norm": float(np.median(record["gradient_norm"])),
            "max_applied_norm": float(np.max(record["applied_norm"])),
            "max_applied_entry": float(np.max(record["largest_applied_entry"])),
            "clipped_steps": int(clipped.sum()),
            "max_loss": float(np.max(record["loss"])),
            "final_valid_mse": valid_mse,
            "diverged": not finite,
        })
    steps = {mode: list(range(1, len(record["loss"]) + 1)) for mode, record in records.items()}
    panels = [
        Panel({mode: records[mode]["gradient_norm"] for mode in MODES},
              "raw global gradient norm (dashed: the norm threshold)", "SGD step",
              "||grad L||", log_y=True, x_values=steps, hline=config.exploding_clip_norm),
        Panel({mode: records[mode]["applied_norm"] for mode in MODES},
              "norm of the gradient applied (after clipping)", "SGD step", "||applied||",
              log_y=True, x_values=steps, hline=config.exploding_clip_norm),
        Panel({mode: records[mode]["loss"] for mode in MODES}, "training loss (batch MSE)",
              "SGD step", "loss", log_y=True, x_values=steps),
    ]
    figure = plot_panels(panels, ctx.run_dir.plot_dir / "exploding.png",
                         f"tanh RNN, recurrent spectral radius {spectral_radius:.2f}, adding "
                         f"problem T={length}, SGD lr {config.exploding_learning_rate}")
    return StudyResult(
        f"Exploding gradients: tanh RNN with recurrent spectral radius {spectral_radius:.3f}, "
        f"adding problem T={length}, {config.exploding_steps} SGD steps per run",
        rows, figure,
        {"spectral_radius": spectral_radius,
         "records": {mode: {name: values.tolist() for name, values in record.items()}
                     for mode, record in records.items()}})


def _spectral_radius(cell) -> float:
    """The largest |eigenvalue| of the cell's recurrent matrix."""
    matrix = keras.ops.convert_to_numpy(cell.recurrent_kernel)
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))
