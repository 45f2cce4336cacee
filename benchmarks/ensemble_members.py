"""Training an ensemble's members one after another within a wall-time budget (shared by
the sentiment and tagging ensemble benchmarks).

A member starts only if the time spent so far plus the longest member so far still fits
in the budget, so the members' summed training time stays within it. A member whose run
directory already holds its final metrics is reused, not retrained; an interrupted one
resumes from its last backup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from apps.common.run_dir import RunDir


def train_members(
    budget_minutes: float,
    member_arguments: Sequence[Callable[[Path], list[str]]],
    run_root: Path,
    main: Callable[[list[str]], dict],
    done_key: str,
    time_key: str = "train_wall_time_s",
    prepare: Callable[[Path, list[Path]], None] | None = None,
) -> list[Path]:
    """Trains members `main(arguments(run_dir))` in order; returns the trained run dirs.

    `done_key` is the metric a finished member's metrics.json holds (e.g.
    "validation_accuracy"); its `time_key` (training seconds) counts against the budget.
    `prepare(run_dir, members_so_far)`, if given, runs before a member is trained (e.g.
    to give it the first member's vocabularies).
    """
    budget = budget_minutes * 60
    spent, longest, members = 0.0, 0.0, []
    for index, arguments in enumerate(member_arguments):
        if spent + longest > budget:
            print(f"budget: {spent / 60:.1f} of {budget_minutes} min spent; no room for another")
            break
        run_dir = run_root / f"member_{index + 1:02d}"
        metrics = RunDir(run_dir).read_metrics()
        if done_key not in metrics:  # not trained yet (or interrupted: resumes)
            if prepare is not None:
                prepare(run_dir, list(members))
            metrics = main(arguments(run_dir))
        seconds = metrics[time_key]
        spent, longest = spent + seconds, max(longest, seconds)
        members.append(run_dir)
        print(f"member {index + 1}: {done_key} {metrics[done_key]:.4f}, {seconds:.0f} s")
    return members
