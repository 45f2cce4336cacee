"""`ReduceLROnPlateauFrom`: a stall in the first epochs does not decay the rate."""

from __future__ import annotations

import keras
import pytest

from apps.common.optimizer import ReduceLROnPlateauFrom


def _learning_rates(callback: keras.callbacks.ReduceLROnPlateau, scores: list[float]):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    callback.set_model(model)
    rates, logged = [], []
    for epoch, score in enumerate(scores):
        logs = {"val_bleu": score}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
        rates.append(float(model.optimizer.learning_rate))
    return rates, logged


@pytest.mark.parametrize("start", [0, 3])
def test_no_decay_before_start_from_epoch_then_as_keras(start):
    # flat at first (as BLEU of averaged weights), then rising, then stalling
    scores = [0.03, 0.03, 0.01, 5.0, 9.0, 9.0, 8.0, 9.5, 9.5]
    kwargs = dict(monitor="val_bleu", mode="max", factor=0.5, patience=1, verbose=0)
    rates, logged = _learning_rates(ReduceLROnPlateauFrom(start_from_epoch=start, **kwargs), scores)
    keras_rates, _ = _learning_rates(keras.callbacks.ReduceLROnPlateau(**kwargs), scores)
    # the rate the epoch ran with is logged, as by Keras's callback
    assert logged == [1.0] + rates[:-1]
    if start == 0:
        assert rates == keras_rates
    else:
        assert keras_rates[:3] == [1.0, 0.5, 0.25]
        # epochs 0-2 are not judged; from epoch 3 on: stall at 5, 6, 8 (patience 1)
        assert rates == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.25, 0.125]
