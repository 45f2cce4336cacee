"""Many-to-one regressor: a recurrent layer of the suite, then a linear read-out."""

from __future__ import annotations

import keras

import layers
from apps.adding.config import AddingConfig
from apps.common.optimizer import make_optimizer


def build_model(config: AddingConfig, cell_name: str | None = None) -> keras.Model:
    cell = layers.build_cell(cell_name or config.cell, config.units)
    inputs = keras.Input(shape=(config.length, 2), name="sequence")
    hidden = layers.Recurrent(cell, name="recurrent")(inputs)
    outputs = keras.layers.Dense(1, name="sum")(hidden)
    model = keras.Model(inputs, keras.ops.squeeze(outputs, -1), name=f"adding_{cell_name or config.cell}")
    model.compile(optimizer=make_optimizer(config), loss="mse", metrics=["mse"])
    return model
