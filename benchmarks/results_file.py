"""Reading and merging the flat results files of `benchmarks/results/`.

A file holds the figures of several named runs as `<name>_<figure>` keys next to shared
keys such as `machine`. Run names may prefix one another (`ptb_lstm` and
`ptb_lstm_light_dropout`), so a key belongs to the longest name that, with "_", starts it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterable, Iterator
from pathlib import Path


def owner(key: str, names: Iterable[str]) -> str | None:
    """The run `key` belongs to: the longest of `names` that, with "_", prefixes it (None
    for shared keys)."""
    owners = [name for name in names if key.startswith(f"{name}_")]
    return max(owners, key=len) if owners else None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialises read-modify-write cycles of `path` between processes (benchmarks that
    run side by side and merge into one file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def merge_run(path: Path, figures: dict, *, command: str, conditions: str, load: list[float],
              started: float, **shared) -> dict:  # fmt: skip
    """Merges `figures` and the run's machine, conditions (by default the load average
    seen), command, date and wall time (since `time.perf_counter()` was `started`), plus
    `shared` keys, into the results file at `path`; returns its contents. Benchmarks call it
    after each part, so that a later failure keeps what was measured."""
    import datetime
    import time

    from benchmarks import host

    with locked(path):
        results = read(path)
        results.update(figures)
        results.update({
            "machine": host.machine(),
            **shared,
            "conditions": conditions or f"load average {min(load):.1f}-{max(load):.1f}",
            "command": command,
            "date": datetime.date.today().isoformat(),
            "wall_s": round(time.perf_counter() - started, 1),
        })  # fmt: skip
        write(path, results)
    return results
