"""`python -m apps.adding train|evaluate|predict|export|demo`: the adding problem."""

from __future__ import annotations

import argparse

from apps.adding.config import AddingConfig
from apps.common.cli import (
    Command,
    evaluate_split_argument,
    main_guard,
    number_at_least,
    run_app,
)


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-examples", type=number_at_least(1), default=5,
                        help="random sequences to draw and predict (default: 5)")
    parser.add_argument("--seed-data", type=number_at_least(0), default=7,
                        help="seed of those sequences (default: 7)")
    parser.add_argument("--export-dir", default="",
                        help="predict with this SavedModel instead of the run's checkpoint")


TASKS = "apps.adding.tasks"
COMMANDS = {
    "train": Command(f"{TASKS}:train", "train one cell (resumes an existing --run-dir)",
                     creates_run=True),
    "evaluate": Command(f"{TASKS}:evaluate", "MSE of a trained run on the valid or test "
                        "sequences", evaluate_split_argument),
    "predict": Command(f"{TASKS}:predict", "predict random sequences", _predict_arguments),
    "export": Command(f"{TASKS}:export", "write a SavedModel into RUN_DIR/export/<version>"),
    "demo": Command(f"{TASKS}:demo", "train each of --demo-cells and print the comparison",
                    creates_run=True),
}


def main(argv: list[str] | None = None):
    return run_app(
        "adding",
        AddingConfig,
        COMMANDS,
        argv,
        description="The adding problem (Hochreiter & Schmidhuber 1997) with the suite's cells.",
    )


if __name__ == "__main__":
    main_guard(main)
