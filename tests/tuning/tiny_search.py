"""The smallest search the tuning tests run: the adding app, tiny widths, one short epoch."""

from __future__ import annotations

from pathlib import Path

#: The task and its options, then training arguments of `python -m tuning search` for a
#: search of seconds.
TINY = [
    "adding",
    "--length",
    "8",
    "--train-examples",
    "64",
    "--valid-examples",
    "32",
    "--test-examples",
    "32",
    "--batch-size",
    "32",
    "--steps-per-epoch",
    "2",
    "--epochs",
    "1",
    "--units",
    "4,8",
]


def search_arguments(
    run_dir: str | Path,
    per_variant: int = 1,
    cells: str = "vanilla,gru",
    task_arguments: list[str] = TINY,
) -> list[str]:
    """The `search` command line of `per_variant` trials per cell of `cells` into `run_dir`."""
    task, *options = task_arguments
    return [
        "search",
        task,
        "--run-dir",
        str(run_dir),
        "--per-variant",
        str(per_variant),
        "--cells",
        cells,
        *options,
    ]
