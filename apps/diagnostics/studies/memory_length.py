"""memory-length: the longest gap each cell bridges (Hochreiter & Schmidhuber 1997;
Le et al. 2015 for the IRNN).

Two memory tasks of `pipelines.procedural`, at gaps T: `sign_memory` (the sign of the
first of T inputs, the rest noise) and `copy` (recall `copy_length` symbols after a
delay of T blanks). A run trains one cell from its seed, on fresh examples every step,
for at most `memory_steps` steps, and succeeds once its held-out accuracy (sign memory:
of the sign; copy: of the recalled symbols) reaches `memory_accuracy`. The success rate
is the fraction of seeds that succeed.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from apps.common.plots import Panel, plot_panels
from apps.diagnostics import data
from apps.diagnostics.data import HELDOUT_SEED_OFFSET
from apps.diagnostics.fitting import Rewind, fit_and_score, initial_weights
from apps.diagnostics.model import build_study_cell, copy_tagger, sign_classifier
from apps.diagnostics.report import StudyResult


def _builder(config, task: str, cell_name: str):
    """A function building the task's model with `cell_name` (compiled if given options)."""
    if task == "sign_memory":
        return lambda options=None: sign_classifier(build_study_cell(cell_name, config.units),
                                                    options)
    vocab = data.copy_vocab_size(config)
    return lambda options=None: copy_tagger(build_study_cell(cell_name, config.units), vocab,
                                            options)


def _examples(config, task: str, length: int, count: int, seed: int):
    if task == "sign_memory":
        return data.sign_memory_arrays(count, length, config.sign_noise, seed)
    return data.copy_arrays(count, length, config, seed)


def _accuracy(config, task: str, valid_x, valid_y):
    """The run's score: accuracy of the sign, or of the recalled symbols."""

    def score(model) -> float:
        outputs = model.predict(valid_x, batch_size=256, verbose=0)
        if task == "sign_memory":
            return float(np.mean((outputs > 0) == (valid_y > 0.5)))
        recalled = np.argmax(outputs[:, -config.copy_length:], -1)
        return float(np.mean(recalled == valid_y[:, -config.copy_length:]))

    return score


def _runs(config, task: str, cell_name: str) -> list[dict]:
    """The rows of one cell on one task: every T, every seed, one traced model."""
    build = _builder(config, task, cell_name)
    keras.utils.set_random_seed(config.seed)
    model = build(config)
    rewind = Rewind(model)
    threshold, rows = config.memory_accuracy, []
    for length in config.memory_lengths:
        valid_x, valid_y = _examples(config, task, length, config.valid_examples,
                                     config.seed + HELDOUT_SEED_OFFSET)
        accuracies, steps_needed = [], []
        for offset in range(config.memory_seeds):
            seed = config.seed + offset
            logging.info("memory-length: %s %s T=%d seed %d", task, cell_name, length, seed)
            rewind(initial_weights(build, seed))
            train_x, train_y = _examples(config, task, length,
                                         config.memory_steps * config.batch_size, seed)
            points = fit_and_score(
                model, data.training_batches(train_x, train_y, config.batch_size, seed),
                config.memory_steps, config.memory_eval_every,
                _accuracy(config, task, valid_x, valid_y),
                stop=lambda value: value >= threshold, verbose=config.verbose)
            accuracies.append(points[-1][1])
            if points[-1][1] >= threshold:
                steps_needed.append(points[-1][0])
        rows.append({
            "task": task,
            "cell": cell_name,
            "T": length,
            "success_rate": len(steps_needed) / config.memory_seeds,
            "mean_final_accuracy": float(np.mean(accuracies)),
            "mean_steps_to_success": float(np.mean(steps_needed)) if steps_needed else None,
        })
    return rows


def run(ctx) -> StudyResult:
    config = ctx.config
    threshold = config.memory_accuracy
    rows = [row for task in config.memory_tasks for cell_name in config.memory_cells
            for row in _runs(config, task, cell_name)]

    def by_cell(task: str, key: str) -> dict[str, list]:
        series: dict[str, list] = {}
        for row in rows:
            if row["task"] == task:
                series.setdefault(row["cell"], []).append(row[key])
        return series

    panels = [
        Panel(by_cell(task, "success_rate"), f"{task}: success rate over {config.memory_seeds} "
              "seeds", "gap T", f"fraction of runs reaching accuracy {threshold}", log_x=True,
              x_values=by_cell(task, "T"), markers=True)
        for task in config.memory_tasks
    ]
    figure = plot_panels(panels, ctx.run_dir.plot_dir / "memory-length.png",
                         f"Memory length: at most {config.memory_steps} steps of "
                         f"{config.batch_size} sequences per run")
    return StudyResult(
        f"Memory length: success = held-out accuracy >= {threshold} within "
        f"{config.memory_steps} steps; {config.memory_seeds} seeds per cell, task and T",
        rows, figure)
