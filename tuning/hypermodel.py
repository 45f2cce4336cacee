"""The keras-tuner hypermodel: a task (through its adapter) with the search space of
`tuning.space`.

`fit` trains one trial and returns its metrics: the objective at the best validation
epoch (the weights of that epoch are restored), every other logged value at that epoch,
the test metrics when the task has a test split, the parameter count, the epochs trained
and the training time. A trial whose objective is never finite (diverged from the first
epoch) raises `FailedTrialError`: keras-tuner records it as FAILED with that message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import keras
import keras_tuner as kt

from tuning.adapters import Adapter, Prepared
from tuning.space import SearchSpace


def fit_and_measure(
    model: keras.Model,
    data: Prepared,
    objective: str,
    direction: str = "min",
    epochs: int = 10,
    initial_epoch: int = 0,
    early_stopping_patience: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
) -> dict[str, float]:
    """Fits `model`, restores its best epoch (by `objective`) and measures it."""
    start = time.perf_counter()
    keep_best = keras.callbacks.EarlyStopping(
        monitor=objective,
        mode=direction,
        patience=early_stopping_patience if early_stopping_patience > 0 else epochs + 1,
        restore_best_weights=True,
    )
    history = model.fit(
        data.train,
        validation_data=data.validation,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=data.steps_per_epoch,
        callbacks=[*callbacks, keras.callbacks.TerminateOnNaN(), keep_best],
        verbose=verbose,
        shuffle=False,  # the tf.data pipelines shuffle themselves
    ).history
    fit_seconds = time.perf_counter() - start
    values = history.get(objective, [])
    finite = [(value, epoch) for epoch, value in enumerate(values) if math.isfinite(value)]
    if not finite:
        raise kt.errors.FailedTrialError(
            f"diverged: {objective} was never finite ({values}); the learning rate is "
            "probably too high for this configuration"
        )
    best_value, best_epoch = (min if direction == "min" else max)(finite)
    metrics = {
        name: float(series[best_epoch])
        for name, series in history.items()
        if best_epoch < len(series) and math.isfinite(series[best_epoch])
    }
    metrics[objective] = float(best_value)
    if data.test is not None:
        result = model.evaluate(data.test, verbose=0, return_dict=True)
        metrics.update({f"test_{name}": float(value) for name, value in result.items()})
    metrics.update(
        best_epoch=float(initial_epoch + best_epoch + 1),
        epochs_trained=float(initial_epoch + len(values)),
        param_count=float(model.count_params()),
        fit_time_s=float(fit_seconds),
    )
    return metrics


class AdapterHyperModel(kt.HyperModel):
    """A task (through its adapter, `tuning.adapters`) over `space`: `build` writes the
    trial's values into the task's config and calls its model builder; `fit` trains and
    measures the model (see `fit_and_measure`)."""

    def __init__(
        self,
        adapter: Adapter,
        space: SearchSpace,
        epochs: int = 10,
        early_stopping_patience: int = 0,
        verbose: int = 0,
    ):
        super().__init__(name=f"task_{adapter.name}")
        self.adapter = adapter
        self.space = space
        self.epochs = epochs
        self.early_stopping_patience = early_stopping_patience
        self.verbose = verbose
        #: Whether the tuner may clear the Keras session (and TensorFlow's seed) between
        #: trials: not when the prepared data hold TF resources (in-graph tokenizers).
        self.clear_session = adapter.clear_session

    @property
    def objective(self) -> kt.Objective:
        return kt.Objective(self.adapter.objective, self.adapter.direction)

    def prepare(self) -> None:
        """Prepares the task's data now (bad paths and formats fail before any trial)."""
        _ = self.adapter.prepared

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        return self.adapter.build_model(self.space.declare(hp, self.adapter.hyperparameters))

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        objective = self.objective
        return fit_and_measure(
            model,
            self.adapter.prepared,
            objective=objective.name,
            direction=objective.direction,
            epochs=epochs or self.epochs,
            initial_epoch=initial_epoch,
            early_stopping_patience=self.early_stopping_patience,
            callbacks=[*self.adapter.callbacks(hp.values), *callbacks],
            verbose=self.verbose,
        )
