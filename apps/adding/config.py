"""Defaults of the adding-problem app; every field is a command-line flag."""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig


@dataclasses.dataclass
class AddingConfig(TrainConfig):
    length: int = 100  # sequence length T
    cell: str = "lstm"  # any name of layers.CELL_NAMES
    units: int = 64
    train_examples: int = 100_000
    test_examples: int = 2_000
    epochs: int = 30
    steps_per_epoch: int = 100
    batch_size: int = 64
    learning_rate: float = 3e-3
    clip_norm: float = 1.0
    monitor: str = "val_mse"
    solved_mse: float = 0.01  # the task counts as solved below this test MSE
    stop_mse: float = 0.002  # stop training early once the test MSE is below this
    demo_cells: list[str] = dataclasses.field(default_factory=lambda: ["rnn", "lstm", "gru"])
    # The demo's small LSTM-variant ablation (apps/adding/ablation.py, through tuning/):
    demo_trials: int = 3  # random trials per cell; 0 skips the ablation
    demo_ablation_cells: list[str] = dataclasses.field(
        default_factory=lambda: ["vanilla", "nfg", "noaf", "cifg", "gru", "rnn"]
    )
    demo_ablation_length: int = 30  # sequence length of the ablation's trials (0: `length`)
    demo_ablation_epochs: int = 5  # epochs of `steps_per_epoch` steps per trial
