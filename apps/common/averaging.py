"""Scoring and checkpointing the exponential moving average of the weights.

With `--ema-momentum m` (> 0) the optimizer keeps, after every step, the average
`a <- m a + (1 - m) w` of each trainable weight (Keras's `use_ema`). `WeightAverage`
puts the averages into the model for validation and for everything that looks at the
model at an epoch's end (metric callbacks, the best-model checkpoint, early stopping),
then puts the trained weights back before the backup is written and training goes on,
so that a resumed run continues from exactly where it stopped. At the end of `fit`
Keras writes the averages into the model (`finalize_variable_values`).

Why not `keras.callbacks.SwapEMAWeights`: for epoch-end callbacks to see the average it
must swap at epoch ends (`swap_on_epoch=True`) and keeps the average in the model until
the next epoch begins, so BackupAndRestore saves the swapped weights and a resumed run
trains on from the average (tests/apps/test_averaging.py shows it ending elsewhere than an
uninterrupted run). Splitting the swap in two callbacks around the backup needs the same
optimizer attributes SwapEMAWeights itself reads (`_trainable_variables`,
`_model_variables_moving_average`), listed with the other private APIs in layers/README.md."""

from __future__ import annotations

import keras
import numpy as np


def _ema_optimizer(model: keras.Model) -> keras.optimizers.Optimizer:
    optimizer = model.optimizer
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    if not getattr(optimizer, "use_ema", False):
        raise ValueError("WeightAverage needs an optimizer built with use_ema=True (--ema-momentum)")
    return optimizer


class WeightAverage:
    """Two callbacks sharing one store of trained weights: `apply` (first in the
    callback list) swaps the averages in for validation and at each epoch's end; `restore`
    (just before the backup) swaps the trained weights back."""

    def __init__(self):
        self._trained: list[np.ndarray] | None = None
        self.apply = _Apply(self)
        self.restore = _Restore(self)

    def swap_in(self, model: keras.Model) -> None:
        if self._trained is not None:
            return
        optimizer = _ema_optimizer(model)
        if not optimizer.built:  # no step taken yet: nothing averaged
            return
        variables = optimizer._trainable_variables
        self._trained = [keras.ops.convert_to_numpy(v) for v in variables]
        for variable, average in zip(variables, optimizer._model_variables_moving_average):
            variable.assign(average)

    def swap_out(self, model: keras.Model) -> None:
        if self._trained is None:
            return
        for variable, value in zip(_ema_optimizer(model)._trainable_variables, self._trained):
            variable.assign(value)
        self._trained = None


class _Apply(keras.callbacks.Callback):
    def __init__(self, average: WeightAverage):
        super().__init__()
        self.average = average

    def on_test_begin(self, logs=None):
        self.average.swap_in(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self.average.swap_in(self.model)


class _Restore(keras.callbacks.Callback):
    def __init__(self, average: WeightAverage):
        super().__init__()
        self.average = average

    def on_epoch_end(self, epoch, logs=None):
        self.average.swap_out(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self.average.swap_out(self.model)
