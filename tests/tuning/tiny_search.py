"""The smallest search the tuning tests run: the adding task, tiny widths, one epoch."""

from __future__ import annotations

from pathlib import Path

#: Task and training arguments of `python -m tuning search` for a search of seconds.
TINY = [
    "--task",
    "adding",
    "--length",
    "8",
    "--train-examples",
    "64",
    "--validation-examples",
    "32",
    "--test-examples",
    "32",
    "--batch-size",
    "32",
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
    return [
        "search",
        "--run-dir",
        str(run_dir),
        "--per-variant",
        str(per_variant),
        "--cells",
        cells,
        *task_arguments,
    ]
