"""The shared training clock: time summed over resumed processes, the budget enforced."""

import json

import keras
import numpy as np
import pytest

from apps.common.time_budget import TrainingClock, earlier_totals


def _model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


class FakeClock:
    """A clock that moves only when told to (or by `step` at each reading)."""

    def __init__(self, start: float = 1000.0, step: float = 0.0):
        self.now, self.step = start, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_clock_sums_the_time_of_earlier_processes_and_writes_it_at_epoch_end(tmp_path):
    path = tmp_path / "backup" / "clock.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"wall_s": 120.0, "cpu_s": 30.0}))  # an earlier, killed process
    wall_clock, cpu_clock = FakeClock(), FakeClock()
    clock = TrainingClock(path, wall_clock=wall_clock, cpu_clock=cpu_clock)
    clock.set_model(_model())
    clock.on_train_begin()
    wall_clock.now += 7.5
    cpu_clock.now += 2.0
    assert clock.totals() == (127.5, 32.0)
    clock.on_epoch_end(0)
    assert not clock.model.stop_training  # no budget: never stops
    assert earlier_totals(path) == {"wall_s": 127.5, "cpu_s": 32.0}


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
    class Batches(keras.callbacks.Callback):
        seen = 0

        def on_train_batch_end(self, batch, logs=None):
            Batches.seen += 1
            wall_clock.now += 1.0  # each batch takes one second

    path = tmp_path / "clock.json"
    wall_clock = FakeClock()
    model = _model()
    x = np.zeros((400, 1), "float32")
    clock = TrainingClock(path, minutes=30 / 60, wall_clock=wall_clock)  # 30 seconds
    history = model.fit(x, x, batch_size=1, epochs=3, verbose=0, callbacks=[Batches(), clock])
    assert len(history.history["loss"]) == 1 and clock.stopped
    assert Batches.seen == 31  # stopped after the first batch past the budget
    assert earlier_totals(path)["wall_s"] == 31.0  # written at the stopped epoch's end


def test_a_clock_file_that_is_not_one_names_the_file(tmp_path):
    path = tmp_path / "clock.json"
    path.write_text("not json")
    with pytest.raises(ValueError, match="clock.json"):
        earlier_totals(path)
