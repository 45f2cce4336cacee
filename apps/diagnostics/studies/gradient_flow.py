"""gradient-flow: how much of the loss gradient at the last step reaches each earlier
hidden state, ||dL_T/dh_t|| for t = T..1, per cell, at initialisation and after training
on the adding problem (Bengio et al. 1994; Hochreiter & Schmidhuber 1997; Le et al. 2015).

L_T is the squared error of the read-out of h_T. The gradient with respect to h_t is
measured by adding a zero tensor to the state after step t and differentiating with
respect to it: exactly the gradient that backpropagation through time delivers to h_t,
through every path (for the LSTM, through h and the memory cell c alike).
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from apps.common.plots import Panel, plot_panels
from apps.diagnostics.data import HELDOUT_SEED_OFFSET, adding_arrays, training_batches
from apps.diagnostics.fitting import fit_and_score
from apps.diagnostics.model import build_study_cell, regressor
from apps.diagnostics.report import StudyResult

TINY_NORM = 1e-30  # norms below it (underflow, dead ReLUs) stay out of the fitted decay


def hidden_state_gradients(cell, readout, inputs, targets) -> np.ndarray:
    """`[T]`: the mean over the examples of ||dl/dh_t||, where l is the squared error
    `(readout(h_T) - target)^2` of each example and h_t the cell's hidden state after
    step t (the first state, h, of cells with several)."""
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    targets = tf.convert_to_tensor(targets, tf.float32)
    batch, length = int(inputs.shape[0]), int(inputs.shape[1])
    states = cell.get_initial_state(batch_size=batch)
    states = list(states) if isinstance(states, (list, tuple)) else [states]
    zeros = [tf.zeros_like(states[0]) for _ in range(length)]
    with tf.GradientTape() as tape:
        tape.watch(zeros)
        for step in range(length):
            _, states = cell(inputs[:, step], states)
            states = [states[0] + zeros[step], *states[1:]]
        prediction = tf.squeeze(readout(states[0]), -1)
        loss = tf.reduce_sum(tf.square(prediction - targets))  # per-example gradients
    gradients = tape.gradient(loss, zeros)
    return np.array([float(tf.reduce_mean(tf.norm(g, axis=-1))) for g in gradients])


def decay_per_step(norms: np.ndarray) -> float:
    """The factor r of the least-squares fit ||dL_T/dh_{T-k}|| ~ ||dL_T/dh_T|| r^k (fitted
    to log norms over k = 0..T-1): < 1 vanishing, > 1 exploding."""
    steps_back = np.arange(len(norms))[::-1].astype(np.float64)  # norms[t-1] is h_t
    finite = np.isfinite(norms) & (norms > TINY_NORM)
    if finite.sum() < 2:
        return float("nan")
    slope = np.polyfit(steps_back[finite], np.log(norms[finite].astype(np.float64)), 1)[0]
    return float(np.exp(slope))


def _ratio(norms: np.ndarray) -> float:
    return float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan")


def run(ctx) -> StudyResult:
    config = ctx.config
    length = config.flow_length
    train_x, train_y = adding_arrays(max(config.flow_steps, 1) * config.batch_size, length,
                                     config.seed)
    valid_x, valid_y = adding_arrays(config.valid_examples, length,
                                     config.seed + HELDOUT_SEED_OFFSET)
    rows, curves = [], {}
    for name in config.flow_cells:
        logging.info("gradient-flow: %s", name)
        keras.utils.set_random_seed(config.seed)
        model = regressor(build_study_cell(name, config.units), options=config)
        cell, readout = model.get_layer("recurrent").cell, model.get_layer("readout")
        initial = hidden_state_gradients(cell, readout, valid_x, valid_y)
        points = fit_and_score(
            model, training_batches(train_x, train_y, config.batch_size, config.seed),
            config.flow_steps, max(config.flow_steps, 1),
            lambda m: np.mean((m.predict(valid_x, batch_size=256, verbose=0) - valid_y) ** 2),
            score_at_start=True, verbose=config.verbose,
        ) if config.flow_steps else []
        trained = hidden_state_gradients(cell, readout, valid_x, valid_y)
        curves[name] = {"initial": initial.tolist(), "trained": trained.tolist()}
        rows.append({
            "cell": name,
            "init_decay_per_step": decay_per_step(initial),
            "init_ratio_1_to_T": _ratio(initial),
            "trained_decay_per_step": decay_per_step(trained),
            "trained_ratio_1_to_T": _ratio(trained),
            "valid_mse_before": points[0][1] if points else None,
            "valid_mse_after": points[-1][1] if points else None,
        })
    steps = {name: list(range(1, length + 1)) for name in curves}
    panels = [
        Panel({name: curve[moment] for name, curve in curves.items()},
              f"{moment_title} (T = {length})", xlabel="t (the loss is at t = T)",
              ylabel="mean ||dL_T / dh_t||", log_y=True, x_values=steps, invert_x=True)
        for moment, moment_title in (("initial", "at initialisation"),
                                     ("trained", f"after {config.flow_steps} training steps"))
    ]
    figure = plot_panels(panels, ctx.run_dir.plot_dir / "gradient-flow.png",
                         "Gradient flow on the adding problem")
    return StudyResult(
        f"Gradient flow, adding problem T={length}: fitted decay of ||dL_T/dh_t|| per step "
        f"back, and ||dL_T/dh_1|| / ||dL_T/dh_T||, at init and after {config.flow_steps} steps",
        rows, figure, {"norms": curves})
