"""Test-split evaluations, recorded and counted: none is run silently.

The protocol (see ../shared/data/README.md): every choice is made on dev/validation; a
test split is scored only for a recipe fixed in advance, by a committed benchmark command
that records dev and test together. Each such command calls `record` once per scoring.
`record` merges into the app's results file (flat keys, one run name per recipe):

    <name>_dev_<metric>, <name>_test_<metric>      the figures, side by side
    <name>_command, <name>_date, <name>_budget_minutes, <name>_conditions, <name>_machine
    test_evaluations                                how many test scorings the file has seen
    test_evaluation_log                             one {date, name, command} per scoring

The count only grows: re-running a recipe adds to it, so a reader sees how many test
scorings stand behind the figures.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path

from benchmarks import results_file
from benchmarks.host import machine as this_machine


def record(
    path: Path,
    name: str,
    dev: Mapping[str, float],
    test: Mapping[str, float],
    command: str,
    budget_minutes: float,
    conditions: str,
    machine: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict:
    """Merges one scoring of recipe `name` (dev and test figures) into `path`, counts it,
    and returns the file's new content; `machine` defaults to this machine's line."""
    if not test:
        raise ValueError(f"{name}: a test evaluation records at least one test figure")
    date = datetime.date.today().isoformat()
    with results_file.locked(path):
        results = results_file.read(path)
        results.update({f"{name}_dev_{metric}": value for metric, value in dev.items()})
        results.update({f"{name}_test_{metric}": value for metric, value in test.items()})
        results.update(
            {
                f"{name}_command": command,
                f"{name}_date": date,
                f"{name}_budget_minutes": budget_minutes,
                f"{name}_conditions": conditions,
                f"{name}_machine": machine or this_machine(),
                **{f"{name}_{key}": value for key, value in (extra or {}).items()},
            }
        )
        log = list(results.get("test_evaluation_log", []))
        log.append({"date": date, "name": name, "command": command})
        results["test_evaluation_log"] = log
        results["test_evaluations"] = int(results.get("test_evaluations", 0)) + 1
        results_file.write(path, results)
    return results
