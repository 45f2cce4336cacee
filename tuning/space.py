"""The search space of the LSTM-variant ablation: the cell plus the training hyperparameters.

Greff et al. 2017 ("LSTM: A Search Space Odyssey") sample, independently for every
variant, the learning rate (log-uniform), the hidden width (log-uniform), the momentum
(1 - log-uniform) and the standard deviation of Gaussian input noise. This space adds the
optimizer, input dropout and gradient-norm clipping. Every range is `MIN,MAX` on the
command line; a range with one value (or equal ends), or a list of one value, is not
tuned: the hyperparameter is registered as `Fixed`, so it is still recorded with every
trial.

Hyperparameter names (used by the hypermodel, the adapters and the reports): `cell`,
`units`, `learning_rate`, `optimizer`, `momentum` (only when the optimizer is "sgd"),
`input_noise`, `dropout`, `clip_norm`. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterable

from apps.common.config import TrainConfig, option
from layers.cell_names import CELL_NAMES, GREFF_VARIANT_NAMES

#: Greff's baseline ("vanilla": LSTM with peepholes and forget gate) and its eight variants.
GREFF_CELLS: list[str] = list(GREFF_VARIANT_NAMES)
#: The Greff variants plus the two classic non-LSTM baselines.
ALL_CELLS: list[str] = [*GREFF_CELLS, "gru", "rnn"]
#: Shorthands accepted wherever a list of cells is.
CELL_GROUPS: dict[str, list[str]] = {"greff": GREFF_CELLS, "all": ALL_CELLS}
#: The optimizers of the apps (`apps.common.optimizer.make_optimizer` builds them).
OPTIMIZERS: tuple[str, ...] = next(
    field.metadata["choices"] for field in dataclasses.fields(TrainConfig)
    if field.name == "optimizer"
)

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
#: The fields of `SearchSpace` that are MIN,MAX ranges.
RANGES = ("units", "learning_rate", "momentum", "input_noise", "dropout")


def resolve_cells(names: Iterable[str]) -> list[str]:
    """Expands `greff`/`all`, checks every name against `layers.CELL_NAMES`, keeps order."""
    cells: list[str] = []
    for name in names:
        name = name.strip().lower()
        if not name:
            continue
        for cell in CELL_GROUPS.get(name, [name]):
            if cell not in CELL_NAMES:
                raise ValueError(
                    f"--cells: unknown cell {cell!r}; choose from {', '.join(CELL_NAMES)} "
                    f"or the groups {', '.join(CELL_GROUPS)}"
                )
            if cell not in cells:
                cells.append(cell)
    return cells


@dataclasses.dataclass
class SearchSpace:
    """Ranges of the hyperparameters (inclusive); every field is a flag of `search`. The
    defaults here are those of a task without its own (see `Adapter.default_space`)."""

    cells: list[str] = option(
        default_factory=lambda: list(GREFF_CELLS),
        help="cells to compare: names of layers.CELL_NAMES, or the groups greff (vanilla "
        "and the 8 variants of Greff et al.) and all (greff, gru, rnn)",
        choices=(*CELL_GROUPS, *CELL_NAMES),
    )
    units: list[int] = option(
        default_factory=lambda: [20, 200],
        help="MIN,MAX hidden width, sampled log-uniformly (one value: fixed)", at_least=1)
    learning_rate: list[float] = option(
        default_factory=lambda: [1e-4, 1e-1],
        help="MIN,MAX learning rate, sampled log-uniformly (one value: fixed)", above=0)
    optimizers: list[str] = option(
        default_factory=lambda: ["adam"],
        help="optimizers to choose from (sgd: with Nesterov momentum)", choices=OPTIMIZERS)
    momentum: list[float] = option(
        default_factory=lambda: [0.01, 0.99],
        help="sgd: MIN,MAX Nesterov momentum, sampled as 1 - log-uniform (one value: fixed)",
        above=0, below=1)
    input_noise: list[float] = option(
        default_factory=lambda: [0.0, 0.0],
        help="MIN,MAX standard deviation of Gaussian noise added to the inputs, uniform "
        "(tasks whose model has the noise layer)", at_least=0)
    dropout: list[float] = option(
        default_factory=lambda: [0.0, 0.0],
        help="MIN,MAX dropout of the cell, uniform (tasks whose model has dropout)",
        at_least=0, below=1)
    clip_norms: list[float] = option(
        default_factory=lambda: [0.0],
        help="global gradient-norm clipping values to choose from; 0 = off", at_least=0)

    def __post_init__(self):
        self.cells = resolve_cells(self.cells)
        self.optimizers = [name.lower() for name in self.optimizers]
        self.units = [int(value) for value in self.units]
        for name in RANGES[1:]:
            setattr(self, name, [float(value) for value in getattr(self, name)])
        self.clip_norms = [float(value) for value in self.clip_norms]

    def validate(self) -> None:
        """Each range is one value or MIN,MAX with MIN <= MAX; lists are not empty."""
        for name in ("cells", "optimizers", "clip_norms"):
            if not getattr(self, name):
                raise ValueError(f"--{name.replace('_', '-')} needs at least one value")
        for name in RANGES:
            values = getattr(self, name)
            flag = "--" + name.replace("_", "-")
            if len(values) not in (1, 2):
                raise ValueError(f"{flag} takes MIN,MAX or one value; got {len(values)} values")
            if values[0] > values[-1]:
                raise ValueError(f"{flag}: the lower end {values[0]} is above the upper end "
                                 f"{values[-1]}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def with_defaults(cls, defaults: dict) -> type[SearchSpace]:
        """A subclass whose defaults are `defaults` (a task's), keeping every field's help
        and range (so that `--help` of the task shows its own defaults)."""
        hints = typing.get_type_hints(cls)
        fields = [
            (name, hints[name], dataclasses.field(default_factory=functools.partial(list, value)))
            for name, value in defaults.items()
        ]
        return dataclasses.make_dataclass(f"{cls.__name__}WithDefaults", fields, bases=(cls,))

    def declare(self, hp, names: Iterable[str] = HYPERPARAMETER_NAMES) -> dict:
        """Registers the hyperparameters `names` in `hp` (a keras_tuner.HyperParameters)
        and returns their values."""
        names = set(names)
        values: dict = {}
        if "cell" in names:
            values["cell"] = _choice(hp, "cell", self.cells)
        if "units" in names:
            values["units"] = _range(hp, "units", self.units, hp.Int, "log")
        if "learning_rate" in names:
            values["learning_rate"] = _range(
                hp, "learning_rate", self.learning_rate, hp.Float, "log"
            )
        if "optimizer" in names:
            values["optimizer"] = _choice(hp, "optimizer", self.optimizers)
            if "momentum" in names and "sgd" in self.optimizers:
                with hp.conditional_scope("optimizer", ["sgd"]):
                    momentum = _range(hp, "momentum", self.momentum, hp.Float, "reverse_log")
                if values["optimizer"] == "sgd":
                    values["momentum"] = momentum
        if "input_noise" in names:
            values["input_noise"] = _range(hp, "input_noise", self.input_noise, hp.Float)
        if "dropout" in names:
            values["dropout"] = _range(hp, "dropout", self.dropout, hp.Float)
        if "clip_norm" in names:
            values["clip_norm"] = _choice(hp, "clip_norm", self.clip_norms)
        return values


def _choice(hp, name: str, options: list):
    if len(options) == 1:
        return hp.Fixed(name, options[0])
    return hp.Choice(name, options, ordered=False)


def _range(hp, name: str, bounds: list, kind, sampling: str = "linear"):
    low, high = bounds[0], bounds[-1]
    if low == high:
        return hp.Fixed(name, low)
    if sampling == "linear":
        return kind(name, low, high)
    return kind(name, low, high, sampling=sampling)
