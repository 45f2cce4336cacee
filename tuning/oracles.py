"""Oracles: keras-tuner's RandomSearch, Hyperband and BayesianOptimization, made safe to
kill at any moment, plus their per-variant form (Greff et al.'s design: an independent
search for every cell).

keras-tuner writes a trial's file (trial_*/trial.json) and then the oracle's file
(oracle.json), each by truncating and rewriting it. A process killed between the two,
or in the middle of one, leaves them disagreeing (or unreadable), and the rerun loses a
trial (created, never run) or repeats one (finished, run again). Here every file is
replaced atomically, and reloading reconciles oracle.json with the trial files: a
finished trial counts as finished, a started one is run again under its own id.

The per-variant oracles give each trial the cell with the fewest trials so far (ties in
the order of `cells`), then propose the other values with the underlying algorithm as if
the cell were fixed: random search samples them afresh, Bayesian optimisation fits its
Gaussian process to that cell's trials only. Every cell gets exactly `trials_per_cell`
trials. One oracle serves all cells, so resuming and keras-tuner's chief/worker mode work
exactly as for a joint search.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras_tuner as kt
from keras_tuner.engine import hyperparameters as hp_module

from apps.common.config import write_atomically
from tuning.config import ORACLES

FINISHED = ("COMPLETED", "FAILED")


class _Resumable:
    """Atomic oracle and trial files; `reload` reconciles them (see the module doc)."""

    def save(self):
        write_atomically(Path(self._get_oracle_fname()), json.dumps(self.get_state()))

    def _save_trial(self, trial):
        path = Path(self._get_trial_dir(trial.trial_id), "trial.json")
        write_atomically(path, json.dumps(trial.get_state()))

    def reload(self):
        super().reload()  # trials from their files, then oracle.json; running -> retried
        ended = set(self.end_order)
        for trial_id, trial in sorted(self.trials.items()):
            if trial.status in FINISHED and trial_id not in ended:
                # killed after the trial's file said so, before oracle.json did
                self.end_order.append(trial_id)
                if trial_id in self._retry_queue:
                    self._retry_queue.remove(trial_id)
                self._record_values(trial)
            elif trial.status == "RUNNING" and trial_id not in self._retry_queue:
                # killed after the trial's file was written, before oracle.json knew it
                self._retry_queue.append(trial_id)
                if trial_id not in self.start_order:
                    self.start_order.append(trial_id)
                self._record_values(trial)


class RandomSearchOracle(_Resumable, kt.oracles.RandomSearchOracle):
    """keras-tuner's random search, safe to kill."""


class BayesianOptimizationOracle(_Resumable, kt.oracles.BayesianOptimizationOracle):
    """keras-tuner's Bayesian optimisation, safe to kill."""


class HyperbandOracle(_Resumable, kt.oracles.HyperbandOracle):
    """keras-tuner's Hyperband, safe to kill."""


class _BalancedCells:
    def __init__(self, *args, cells: list[str], trials_per_cell: int, **kwargs):
        super().__init__(*args, max_trials=len(cells) * trials_per_cell, **kwargs)
        self.cells = list(cells)
        self.trials_per_cell = trials_per_cell

    def trials_by_cell(self) -> dict[str, int]:
        counts = dict.fromkeys(self.cells, 0)
        for trial in self.trials.values():
            cell = trial.hyperparameters.values.get("cell")
            if cell in counts:
                counts[cell] += 1
        return counts

    def next_cell(self) -> str | None:
        counts = self.trials_by_cell()
        open_cells = [cell for cell in self.cells if counts[cell] < self.trials_per_cell]
        if not open_cells:
            return None
        return min(open_cells, key=lambda cell: (counts[cell], self.cells.index(cell)))

    def populate_space(self, trial_id):
        cell = self.next_cell()
        if cell is None:
            return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
        space, trials = self.hyperparameters, self.trials
        fixed = hp_module.HyperParameters()
        for hp in space.space:
            if hp.name == "cell":
                fixed.Fixed("cell", cell)
            else:
                fixed.merge([hp])
        try:
            self.hyperparameters = fixed
            self.trials = {
                trial_id: trial
                for trial_id, trial in trials.items()
                if trial.hyperparameters.values.get("cell") == cell
            }
            response = super().populate_space(trial_id)
        finally:
            self.hyperparameters, self.trials = space, trials
        if response.get("values") is not None:
            response["values"]["cell"] = cell
        return response


class PerVariantRandomSearchOracle(_BalancedCells, RandomSearchOracle):
    """Random search, `trials_per_cell` independent trials for every cell."""


class PerVariantBayesianOptimizationOracle(_BalancedCells, BayesianOptimizationOracle):
    """Bayesian optimisation, one independent Gaussian process per cell."""


def make_oracle(
    name: str,
    objective: kt.Objective,
    max_trials: int,
    seed: int,
    max_consecutive_failed_trials: int,
    per_variant: int = 0,
    cells: list[str] | None = None,
    max_epochs: int = 10,
    hyperband_factor: int = 3,
    hyperband_iterations: int = 1,
    initial_points: int = 0,
) -> kt.Oracle:
    """The oracle called `name`; `per_variant` > 0 gives that many trials to each cell."""
    common = dict(
        objective=objective,
        seed=seed,
        max_consecutive_failed_trials=max_consecutive_failed_trials,
    )
    if name not in ORACLES:
        raise ValueError(f"unknown oracle {name!r}; choose from {', '.join(ORACLES)}")
    if name == "hyperband":  # per_variant does not apply (SearchOptions.validate refuses it)
        return HyperbandOracle(
            max_epochs=max_epochs,
            factor=hyperband_factor,
            hyperband_iterations=hyperband_iterations,
            **common,
        )
    bayesian = dict(num_initial_points=initial_points or None)
    if per_variant:
        if not cells:
            raise ValueError("--per-variant needs the list of cells")
        if name == "random":
            return PerVariantRandomSearchOracle(cells=cells, trials_per_cell=per_variant, **common)
        return PerVariantBayesianOptimizationOracle(
            cells=cells, trials_per_cell=per_variant, **bayesian, **common
        )
    if name == "random":
        return RandomSearchOracle(max_trials=max_trials, **common)
    return BayesianOptimizationOracle(max_trials=max_trials, **bayesian, **common)
