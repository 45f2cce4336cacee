"""keras-tuner hypermodels: a task of `tuning.tasks` or an app (through its adapter) with
the search space of `tuning.space`.

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

from tuning.space import SearchSpace
from tuning.tasks import Task, TaskData


def fit_and_measure(
    model: keras.Model,
    data: TaskData,
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


class _MeasuredHyperModel(kt.HyperModel):
    """What both hypermodels share: the space, the training length, and a `fit` that
    trains and measures one trial by the hypermodel's `objective` (see `fit_and_measure`)."""

    def __init__(
        self,
        name: str,
        space: SearchSpace,
        epochs: int = 10,
        early_stopping_patience: int = 0,
        verbose: int = 0,
    ):
        super().__init__(name=name)
        self.space = space
        self.epochs = epochs
        self.early_stopping_patience = early_stopping_patience
        self.verbose = verbose

    @property
    def objective(self) -> kt.Objective:
        raise NotImplementedError

    def _fit_and_measure(self, model, data: TaskData, epochs, initial_epoch, callbacks):
        objective = self.objective
        return fit_and_measure(
            model,
            data,
            objective=objective.name,
            direction=objective.direction,
            epochs=epochs or self.epochs,
            initial_epoch=initial_epoch,
            early_stopping_patience=self.early_stopping_patience,
            callbacks=callbacks,
            verbose=self.verbose,
        )


class TaskHyperModel(_MeasuredHyperModel):
    """A task of `tuning.tasks` over `space`: `build` returns the compiled model of the
    sampled values; `fit` trains and measures it (see `fit_and_measure`)."""

    def __init__(
        self,
        task: Task,
        space: SearchSpace,
        epochs: int = 10,
        early_stopping_patience: int = 0,
        verbose: int = 0,
    ):
        super().__init__(f"task_{task.name}", space, epochs, early_stopping_patience, verbose)
        self.task = task

    @property
    def objective(self) -> kt.Objective:
        return kt.Objective(self.task.objective, "min")

    def prepare(self) -> None:
        """Loads the data now (bad paths and formats fail before any trial starts)."""
        _ = self.task.data

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        return self.task.build_model(self.space.declare(hp))

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        return self._fit_and_measure(model, self.task.data, epochs, initial_epoch, callbacks)


class AppHyperModel(_MeasuredHyperModel):
    """An app tuned through its adapter (`tuning.adapters`): the trial's values replace
    fields of the app's config and the app's own model builder makes the model."""

    #: The app's datasets are made once and may hold TF resources (in-graph tokenizers)
    #: that `keras.backend.clear_session()` and `tf.random.set_seed` would destroy: the
    #: tuner keeps the session and seeds trials without TensorFlow's global seed.
    clear_session = False

    def __init__(
        self,
        adapter,
        space: SearchSpace,
        epochs: int = 10,
        early_stopping_patience: int = 0,
        verbose: int = 0,
    ):
        super().__init__(f"app_{adapter.app}", space, epochs, early_stopping_patience, verbose)
        self.adapter = adapter

    @property
    def objective(self) -> kt.Objective:
        return kt.Objective(self.adapter.objective, self.adapter.direction)

    def prepare(self) -> None:
        """Prepares the app's data now (bad paths and formats fail before any trial)."""
        _ = self.adapter.prepared

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        values = self.space.declare(hp, self.adapter.hyperparameters)
        return self.adapter.build_model(values)

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        prepared = self.adapter.prepared
        callbacks = [*prepared.make_callbacks(), *callbacks]
        return self._fit_and_measure(model, prepared.data, epochs, initial_epoch, callbacks)
