"""Oracles: keras-tuner's RandomSearch, Hyperband and BayesianOptimization, plus their
per-variant form (Greff et al.'s design: an independent search for every cell).

The per-variant oracles give each trial the cell with the fewest trials so far (ties in
the order of `cells`), then propose the other values with the underlying algorithm as if
the cell were fixed: random search samples them afresh, Bayesian optimisation fits its
Gaussian process to that cell's trials only. Every cell gets exactly `trials_per_cell`
trials. One oracle serves all cells, so resuming and keras-tuner's chief/worker mode work
exactly as for a joint search.
"""

from __future__ import annotations

import keras_tuner as kt
from keras_tuner.engine import hyperparameters as hp_module

ORACLES = ("random", "bayesian", "hyperband")


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


class PerVariantRandomSearchOracle(_BalancedCells, kt.oracles.RandomSearchOracle):
    """Random search, `trials_per_cell` independent trials for every cell."""


class PerVariantBayesianOptimizationOracle(_BalancedCells, kt.oracles.BayesianOptimizationOracle):
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
    if name == "hyperband":
        if per_variant:
            raise ValueError(
                "--per-variant needs --oracle random or bayesian: Hyperband allocates "
                "epochs across one joint bracket of trials, not a fixed number per cell"
            )
        return kt.oracles.HyperbandOracle(
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
        return kt.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    return kt.oracles.BayesianOptimizationOracle(max_trials=max_trials, **bayesian, **common)
