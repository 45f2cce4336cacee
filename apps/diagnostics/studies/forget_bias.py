"""forget-bias: the LSTM with forget-gate bias 0 against 1 (Gers et al. 2000; Jozefowicz,
Zaremba & Sutskever 2015), learning curves over several seeds on a long-range task (the
adding problem) and on the character language model of the tagged text.

Every seed draws its own initial weights (and, on the adding problem, its own training
sequences; the language model reads the same text); the held-out data is the same for
every run.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from apps.common.plots import Panel, plot_panels
from apps.diagnostics import char_lm
from apps.diagnostics.data import (
    HELDOUT_SEED_OFFSET,
    adding_arrays,
    char_corpus,
    training_batches,
)
from apps.diagnostics.fitting import Rewind, fit_and_score, initial_weights
from apps.diagnostics.model import build_study_cell, regressor
from apps.diagnostics.report import StudyResult

CELLS = {"lstm_fb0": 0.0, "lstm": 1.0}  # study cell -> its forget-gate bias


def _adding_curves(config) -> dict[str, list[list[tuple[int, float]]]]:
    length, steps = config.forget_bias_length, config.forget_bias_steps
    valid_x, valid_y = adding_arrays(config.valid_examples, length,
                                     config.seed + HELDOUT_SEED_OFFSET)

    def score(model):
        return np.mean((model.predict(valid_x, batch_size=256, verbose=0) - valid_y) ** 2)

    curves = {}
    for cell_name in CELLS:
        def build(options=None, cell_name=cell_name):
            return regressor(build_study_cell(cell_name, config.units), options=options)

        keras.utils.set_random_seed(config.seed)
        model = build(config)
        rewind = Rewind(model)
        curves[cell_name] = []
        for offset in range(config.forget_bias_seeds):
            seed = config.seed + offset
            logging.info("forget-bias: adding problem, %s, seed %d", cell_name, seed)
            rewind(initial_weights(build, seed))
            train_x, train_y = adding_arrays(steps * config.batch_size, length, seed)
            curves[cell_name].append(fit_and_score(
                model, training_batches(train_x, train_y, config.batch_size, seed), steps,
                config.forget_bias_eval_every, score, score_at_start=True,
                verbose=config.verbose))
    return curves


def _language_model_curves(config) -> dict[str, list[list[tuple[int, float]]]]:
    corpus = char_corpus(config)
    steps, every = config.forget_bias_lm_steps, config.forget_bias_eval_every
    evaluate_at = sorted({0, *range(every, steps + 1, every), steps})
    curves = {}
    for cell_name in CELLS:
        def build(cell_name=cell_name):
            return char_lm.build(cell_name, config.lm_units, corpus)

        keras.utils.set_random_seed(config.seed)
        trainer = char_lm.Trainer(build(), corpus, config, config.batch_size, config.lm_bptt)
        curves[cell_name] = []
        for offset in range(config.forget_bias_seeds):
            seed = config.seed + offset
            logging.info("forget-bias: language model, %s, seed %d", cell_name, seed)
            trainer.rewind(initial_weights(build, seed))
            run = trainer.train(steps, evaluate_at)
            curves[cell_name].append([(chars // (config.batch_size * config.lm_bptt), nats)
                                      for chars, nats, _ in run.points])
    return curves


def _rows_and_panel(task: str, metric: str, curves, log_y: bool, hline=None):
    rows, means, bands, x_values = [], {}, {}, {}
    for cell_name, runs in curves.items():
        values = np.array([[value for _, value in run] for run in runs])  # [seeds, points]
        final = values[:, -1]
        label = f"forget bias {CELLS[cell_name]:g}"
        rows.append({
            "task": task,
            "metric": metric,
            "forget_bias": CELLS[cell_name],
            "seeds": len(runs),
            "final_mean": float(final.mean()),
            "final_std": float(final.std()),
            "final_best": float(final.min()),
            "final_worst": float(final.max()),
        })
        means[label] = values.mean(0)
        bands[label] = (values.min(0), values.max(0))
        x_values[label] = [steps for steps, _ in runs[0]]
    panel = Panel(means, f"{task}: mean over seeds (band: best to worst)", "training steps",
                  metric.replace("_", " "), log_y=log_y, x_values=x_values, bands=bands,
                  hline=hline)
    return rows, panel


def run(ctx) -> StudyResult:
    config = ctx.config
    adding = _adding_curves(config)
    language_model = _language_model_curves(config)
    adding_rows, adding_panel = _rows_and_panel(
        f"adding T={config.forget_bias_length}", "valid_mse", adding, log_y=True, hline=1 / 6)
    lm_rows, lm_panel = _rows_and_panel("char language model", "valid_nats_per_char",
                                        language_model, log_y=False)
    figure = plot_panels([adding_panel, lm_panel], ctx.run_dir.plot_dir / "forget-bias.png",
                         f"LSTM forget-gate bias 0 vs 1, {config.forget_bias_seeds} seeds each "
                         "(dashed: MSE of predicting the mean)")
    return StudyResult(
        f"Forget-gate bias: final held-out figures over {config.forget_bias_seeds} seeds "
        f"(adding: {config.forget_bias_steps} steps; language model: "
        f"{config.forget_bias_lm_steps} windows of {config.lm_bptt})",
        adding_rows + lm_rows, figure,
        {"curves": {"adding": adding, "language_model": language_model}})
