"""The search space of the LSTM-variant ablation: the cell plus the training hyperparameters.

Greff et al. 2017 ("LSTM: A Search Space Odyssey") sample, independently for every
variant, the learning rate (log-uniform), the hidden width (log-uniform), the momentum
(1 - log-uniform) and the standard deviation of Gaussian input noise. This space adds the
optimizer, input dropout and gradient-norm clipping. A range whose two ends are equal (or
a list of one value) is not tuned: the hyperparameter is registered as `Fixed`, so it is
still recorded with every trial.

Hyperparameter names (used by hypermodels, app adapters and reports): `cell`, `units`,
`learning_rate`, `optimizer`, `momentum` (only when the optimizer is "sgd"),
`input_noise`, `dropout`, `clip_norm`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import keras
import keras_tuner as kt

import layers

#: Greff's baseline ("vanilla": LSTM with peepholes and forget gate) and its eight variants.
GREFF_CELLS: list[str] = list(layers.GREFF_VARIANTS)
#: The Greff variants plus the two classic non-LSTM baselines.
ALL_CELLS: list[str] = [*GREFF_CELLS, "gru", "rnn"]
#: Shorthands accepted wherever a list of cells is.
CELL_GROUPS: dict[str, list[str]] = {"greff": GREFF_CELLS, "all": ALL_CELLS}
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw", "nadam")

#: Names of the hyperparameters of the space, in table order.
HYPERPARAMETER_NAMES = (
    "cell",
    "units",
    "learning_rate",
    "optimizer",
    "momentum",
    "input_noise",
    "dropout",
    "clip_norm",
)


def resolve_cells(names: Iterable[str]) -> list[str]:
    """Expands `greff`/`all`, checks every name against `layers.CELL_NAMES`, keeps order."""
    cells: list[str] = []
    for name in names:
        name = name.strip().lower()
        if not name:
            continue
        for cell in CELL_GROUPS.get(name, [name]):
            if cell not in layers.CELL_NAMES:
                raise ValueError(
                    f"unknown cell {cell!r}; choose from {', '.join(layers.CELL_NAMES)} "
                    f"or the groups {', '.join(CELL_GROUPS)}"
                )
            if cell not in cells:
                cells.append(cell)
    if not cells:
        raise ValueError("no cell to search: give at least one name to --cells")
    return cells


@dataclasses.dataclass
class SearchSpace:
    """Ranges of the hyperparameters; `(low, high)` pairs are inclusive."""

    cells: list[str] = dataclasses.field(default_factory=lambda: list(GREFF_CELLS))
    units: tuple[int, int] = (20, 200)  # log-uniform integer
    learning_rate: tuple[float, float] = (1e-4, 1e-1)  # log-uniform
    optimizers: list[str] = dataclasses.field(default_factory=lambda: ["adam"])
    momentum: tuple[float, float] = (0.01, 0.99)  # SGD (Nesterov): 1 - log-uniform
    input_noise: tuple[float, float] = (0.0, 0.0)  # standard deviation, uniform
    dropout: tuple[float, float] = (0.0, 0.0)  # variational input dropout of the cell
    clip_norms: list[float] = dataclasses.field(default_factory=lambda: [0.0])  # 0 = off

    def __post_init__(self):
        self.cells = resolve_cells(self.cells)
        self.units = _pair(self.units, "units", int)
        self.learning_rate = _pair(self.learning_rate, "learning_rate", float)
        self.momentum = _pair(self.momentum, "momentum", float)
        self.input_noise = _pair(self.input_noise, "input_noise", float)
        self.dropout = _pair(self.dropout, "dropout", float)
        self.clip_norms = [float(value) for value in self.clip_norms] or [0.0]
        self.optimizers = [name.lower() for name in self.optimizers] or ["adam"]
        for name in self.optimizers:
            if name not in OPTIMIZERS:
                raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
        if self.units[0] < 1:
            raise ValueError(f"units must be positive, got {self.units}")
        if self.learning_rate[0] <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 < self.momentum[0] <= self.momentum[1] < 1:
            raise ValueError(f"momentum must lie in (0, 1), got {self.momentum}")
        if self.input_noise[0] < 0:
            raise ValueError(f"input_noise must be >= 0, got {self.input_noise}")
        if not 0 <= self.dropout[0] <= self.dropout[1] < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if any(value < 0 for value in self.clip_norms):
            raise ValueError(f"clip_norms must be >= 0 (0 = no clipping), got {self.clip_norms}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def declare(self, hp: kt.HyperParameters, names: Iterable[str] = HYPERPARAMETER_NAMES) -> dict:
        """Registers the hyperparameters `names` in `hp` and returns their values."""
        names = set(names)
        values: dict = {}
        if "cell" in names:
            values["cell"] = _choice(hp, "cell", self.cells)
        if "units" in names:
            low, high = self.units
            values["units"] = (
                hp.Fixed("units", low)
                if low == high
                else hp.Int("units", low, high, sampling="log")
            )
        if "learning_rate" in names:
            low, high = self.learning_rate
            values["learning_rate"] = (
                hp.Fixed("learning_rate", low)
                if low == high
                else hp.Float("learning_rate", low, high, sampling="log")
            )
        if "optimizer" in names:
            values["optimizer"] = _choice(hp, "optimizer", self.optimizers)
            if "momentum" in names and "sgd" in self.optimizers:
                low, high = self.momentum
                with hp.conditional_scope("optimizer", ["sgd"]):
                    momentum = (
                        hp.Fixed("momentum", low)
                        if low == high
                        else hp.Float("momentum", low, high, sampling="reverse_log")
                    )
                if values["optimizer"] == "sgd":
                    values["momentum"] = momentum
        if "input_noise" in names:
            values["input_noise"] = _uniform(hp, "input_noise", self.input_noise)
        if "dropout" in names:
            values["dropout"] = _uniform(hp, "dropout", self.dropout)
        if "clip_norm" in names:
            values["clip_norm"] = _choice(hp, "clip_norm", self.clip_norms)
        return values


def _pair(value, name: str, kind: type) -> tuple:
    if isinstance(value, (int, float)):
        value = (value, value)
    low, high = (kind(part) for part in value)
    if low > high:
        raise ValueError(f"{name}: the lower end {low} is above the upper end {high}")
    return (low, high)


def _choice(hp: kt.HyperParameters, name: str, options: list):
    if len(options) == 1:
        return hp.Fixed(name, options[0])
    return hp.Choice(name, options, ordered=False)


def _uniform(hp: kt.HyperParameters, name: str, bounds: tuple[float, float]) -> float:
    low, high = bounds
    if low == high:
        return hp.Fixed(name, low)
    return hp.Float(name, low, high)


def make_optimizer(values: dict) -> keras.optimizers.Optimizer:
    """The optimizer of a trial: `optimizer` with `learning_rate`, Nesterov `momentum` for
    SGD, and `global_clipnorm` when `clip_norm` > 0."""
    name = values.get("optimizer", "adam")
    kwargs = {"learning_rate": values["learning_rate"]}
    if values.get("clip_norm", 0.0) > 0:
        kwargs["global_clipnorm"] = values["clip_norm"]
    if name == "sgd":
        return keras.optimizers.SGD(momentum=values.get("momentum", 0.9), nesterov=True, **kwargs)
    return keras.optimizers.get({"class_name": name, "config": kwargs})


def make_cell(values: dict, **overrides):
    """The trial's cell: `layers.build_cell(cell, units, dropout=...)`."""
    dropout = values.get("dropout", 0.0)
    if dropout > 0:
        overrides.setdefault("dropout", dropout)
    return layers.build_cell(values["cell"], values["units"], **overrides)
