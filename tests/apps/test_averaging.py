"""Weight averaging (`--ema-momentum`): validation, metric callbacks and the best
checkpoint see the moving average; training and its backup keep the trained weights, so
a resumed run ends exactly where an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.common.cli import RunContext
from apps.common.config import TrainConfig
from apps.common.optimizer import make_optimizer
from apps.common.plots import read_history
from apps.common.run_dir import RunDir
from apps.common.training import train_model

X = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
Y = X @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3
DATA = tf.data.Dataset.from_tensor_slices((X, Y)).batch(16)
VALID = tf.data.Dataset.from_tensor_slices((X[:32] + 0.1, Y[:32])).batch(16)


class SeesAverage(keras.callbacks.Callback):
    """At each epoch end (after the average is swapped in): the model's weights and the
    optimizer's averages, and the validation loss of the weights the model holds."""

    def __init__(self):
        super().__init__()
        self.records = []

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        weights = [v.numpy() for v in optimizer._trainable_variables]
        averages = [v.numpy() for v in optimizer._model_variables_moving_average]
        self.records.append((weights, averages, logs["val_loss"]))


class TrainedWeights(keras.callbacks.Callback):
    """The weights training goes on from, at each epoch's start."""

    def __init__(self):
        super().__init__()
        self.at_begin = []

    def on_epoch_begin(self, epoch, logs=None):
        self.at_begin.append([v.numpy() for v in self.model.trainable_variables])


def _train(run_dir, epochs, metric_callbacks=(), extra=()):
    config = TrainConfig(
        epochs=epochs, verbose=0, learning_rate=0.05, optimizer="sgd", ema_momentum=0.8,
        run_dir=str(run_dir),
    )  # fmt: skip

    def build():
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=make_optimizer(config), loss="mse")
        return model

    ctx = RunContext(app="toy", config=config, run_dir=RunDir(run_dir), args=None)
    return train_model(ctx, build, DATA, VALID, metric_callbacks=list(metric_callbacks), extra_callbacks=list(extra))


@pytest.mark.slow
def test_validation_and_checkpoint_use_the_average_and_resume_is_exact(tmp_path):
    sees, trained = SeesAverage(), TrainedWeights()
    model, history = _train(tmp_path / "whole", 4, [sees], [trained])
    for epoch, (weights, averages, val_loss) in enumerate(sees.records):
        for weight, average in zip(weights, averages):
            np.testing.assert_array_equal(weight, average)  # the average is in the model
        evaluated = np.mean(((X[:32] + 0.1) @ weights[0] + weights[1] - Y[:32]) ** 2)
        assert val_loss == pytest.approx(float(evaluated), rel=1e-5)  # validated on it
        if epoch + 1 < len(trained.at_begin):  # ...and training goes on from its own weights
            assert not np.allclose(trained.at_begin[epoch + 1][0], weights[0])
    # The best checkpoint holds the average of its epoch.
    best = int(np.argmin(history["val_loss"]))
    saved = keras.saving.load_model(tmp_path / "whole" / "checkpoints" / "best.keras")
    np.testing.assert_allclose(saved.get_weights()[0], sees.records[best][0][0], rtol=1e-6)
    # After fit the model holds the final average.
    np.testing.assert_allclose(model.get_weights()[0], sees.records[-1][1][0], rtol=1e-6)

    _train(tmp_path / "split", 2)
    resumed, _ = _train(tmp_path / "split", 4)
    assert len(read_history(tmp_path / "split" / "history.csv")["loss"]) == 4
    for whole, split in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(split, whole, rtol=1e-6, atol=1e-7)


def test_ema_momentum_reaches_the_optimizer():
    optimizer = make_optimizer(TrainConfig(ema_momentum=0.99))
    assert optimizer.use_ema and optimizer.ema_momentum == 0.99
    assert not make_optimizer(TrainConfig()).use_ema
    with pytest.raises(ValueError, match="ema_momentum must be in"):
        make_optimizer(TrainConfig(ema_momentum=1.0))


@pytest.mark.slow
def test_keras_swap_ema_weights_cannot_resume_exactly(tmp_path):
    """Why apps/common/averaging.py is not `keras.callbacks.SwapEMAWeights`: for the
    epoch-end callbacks (checkpoint, validation BLEU) to see the average it must swap at
    epoch ends (`swap_on_epoch=True`), and then BackupAndRestore saves the swapped
    weights: a run killed and resumed goes on from the average as if it were the trained
    weights, and ends elsewhere than an uninterrupted run (which WeightAverage does not:
    the test above)."""

    def fit(run_dir: Path, epochs: int, swap: bool = True) -> list[np.ndarray]:
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        config = TrainConfig(learning_rate=0.05, optimizer="sgd", ema_momentum=0.8)
        model.compile(optimizer=make_optimizer(config), loss="mse")
        callbacks = [
            *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if swap else []),
            keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
        ]
        model.fit(DATA, validation_data=VALID, epochs=epochs, verbose=0, callbacks=callbacks)
        return model.get_weights()

    # Without the swap, the same fit resumes exactly: the swap is what breaks it.
    whole = fit(tmp_path / "plain_whole", 4, swap=False)
    fit(tmp_path / "plain_split", 2, swap=False)
    np.testing.assert_allclose(fit(tmp_path / "plain_split", 4, swap=False)[0], whole[0], rtol=1e-6)
    whole = fit(tmp_path / "whole", 4)
    fit(tmp_path / "split", 2)
    resumed = fit(tmp_path / "split", 4)
    assert not np.allclose(resumed[0], whole[0], rtol=1e-4, atol=1e-6)
