"""The shared training clock: time summed over resumed processes, the budget enforced."""

import json
import time

import keras
import numpy as np
import pytest

from apps.common.time_budget import TrainingClock, earlier_totals


def _model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_clock_sums_the_time_of_earlier_processes_and_writes_it_at_epoch_end(tmp_path):
    path = tmp_path / "backup" / "clock.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"wall_s": 120.0, "cpu_s": 30.0}))  # an earlier, killed process
    clock = TrainingClock(path)
    clock.set_model(_model())
    clock.on_train_begin()
    wall, cpu = clock.totals()
    assert 120.0 <= wall < 130.0 and cpu >= 30.0
    clock.on_epoch_end(0)
    assert not clock.model.stop_training  # no budget: never stops
    saved = earlier_totals(path)
    assert saved["wall_s"] >= 120.0 and saved["cpu_s"] >= 30.0


def test_a_run_resumed_with_its_budget_spent_trains_one_batch_at_most(tmp_path):
    path = tmp_path / "clock.json"
    path.write_text(json.dumps({"wall_s": 61.0, "cpu_s": 0.0}))
    model = _model()
    x = np.zeros((64, 1), "float32")
    history = model.fit(
        x, x, batch_size=1, epochs=5, verbose=0, callbacks=[TrainingClock(path, 1.0)]
    )
    assert len(history.history["loss"]) == 1  # the first epoch stopped at once


def test_the_budget_stops_training_within_the_epoch_that_passes_it(tmp_path):
    class SlowBatches(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.05)

    path = tmp_path / "clock.json"
    model = _model()
    x = np.zeros((400, 1), "float32")
    clock = TrainingClock(path, minutes=0.5 / 60)  # half a second
    history = model.fit(x, x, batch_size=1, epochs=3, verbose=0, callbacks=[SlowBatches(), clock])
    assert len(history.history["loss"]) == 1 and clock.stopped
    assert 0.5 <= earlier_totals(path)["wall_s"] < 10.0  # written at the stopped epoch's end


def test_a_clock_file_that_is_not_one_names_the_file(tmp_path):
    path = tmp_path / "clock.json"
    path.write_text("not json")
    with pytest.raises(ValueError, match="clock.json"):
        earlier_totals(path)
