"""`python -m apps.adding train|evaluate|predict|export|demo`: the adding problem."""

from __future__ import annotations

import argparse

from apps.adding import tasks
from apps.adding.config import AddingConfig
from apps.common.cli import Command, main_guard, run_app


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-examples", type=int, default=5, help="random sequences to predict")
    parser.add_argument("--seed-data", type=int, default=7, help="seed of those sequences")
    parser.add_argument("--export-dir", default="", help="predict with this SavedModel instead")


COMMANDS = {
    "train": Command(tasks.train, "train one cell", creates_run=True),
    "evaluate": Command(tasks.evaluate, "test MSE of a trained run"),
    "predict": Command(tasks.predict, "predict random sequences", _predict_arguments),
    "export": Command(tasks.export, "write a SavedModel into RUN_DIR/export/<version>"),
    "demo": Command(tasks.demo, "train several cells and print the comparison", creates_run=True),
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
