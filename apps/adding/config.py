"""Options of the adding-problem app; every field is a command-line flag."""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig, option
from layers.cell_names import CELL_NAMES


@dataclasses.dataclass
class AddingConfig(TrainConfig):
    length: int = option(100, "sequence length T", scope="model", at_least=2)
    cell: str = option("lstm", "the recurrent cell", scope="model", choices=CELL_NAMES)
    units: int = option(64, "units of the recurrent layer", scope="model", at_least=1)
    train_examples: int = option(100_000, "training sequences (drawn once, by --seed)",
                                 scope="data", at_least=1)
    valid_examples: int = option(2_000, "validation sequences (choose and stop on them)",
                                 scope="data", at_least=1)
    test_examples: int = option(2_000, "test sequences (scored, never chosen on)",
                                scope="data", at_least=1)
    epochs: int = 30
    steps_per_epoch: int = 100
    batch_size: int = 64
    learning_rate: float = 3e-3
    clip_norm: float = 1.0
    monitor: str = "val_mse"
    solved_mse: float = option(0.01, "the task counts as solved below this MSE", scope="inference",
                               above=0)
    stop_mse: float = option(0.002, "stop training once the validation MSE is below this; "
                             "0: never", at_least=0)
    demo_cells: list[str] = option(
        default_factory=lambda: ["rnn", "lstm", "gru"], help="cells the demo trains, in turn",
        choices=CELL_NAMES)
