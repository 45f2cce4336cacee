"""Kill -9 trials: training runs, vocabulary building, tuner searches.

A training trial runs an app's tiny `train` command, kills it (SIGKILL) at a point drawn
from the seed, reruns the same command to the end, and checks the rerun: it exits 0, it
resumed after the last epoch the killed process completed (its first "Epoch k/E" line),
history.csv holds each epoch exactly once, metrics.json counts every epoch, and where the
app promises it (`tiny.AppSpec.equal_weights`) the final weights are bit-equal to those
of an uninterrupted reference run. Kill points alternate between a time drawn uniformly
over the reference run's span from its first write into the run directory to its end,
and the N-th write into the run directory (N uniform over the reference's writes;
`benchmarks.reliability.inject`).

A vocabulary trial kills the run at each write into its vocab/ folder in turn (the
tokenizer files half written, or about to be renamed) and checks that the rerun trains
and ends with the files of an uninterrupted run: a partial file is never trusted.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
from pathlib import Path

from benchmarks.reliability.common import (
    Trial,
    history_epochs,
    read_json,
    run,
    weights_differ,
)
from benchmarks.reliability.tiny import APPS, AppSpec

_EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+)$", re.M)


@dataclasses.dataclass
class Reference:
    """An uninterrupted run and the writes it made."""

    run_dir: Path
    wall_s: float
    events: list[tuple[float, str, str]]  # (seconds since start, kind, path) of each write

    @property
    def first_write_s(self) -> float:
        return self.events[0][0] if self.events else 0.0


def _events(log: Path) -> list[tuple[float, str, str]]:
    if not log.exists():
        return []
    rows = [line.split("\t") for line in log.read_text(encoding="utf-8").splitlines()]
    return [(float(row[1]), row[2], row[3]) for row in rows if len(row) == 4]


def reference(spec: AppSpec, data: dict[str, Path], work: Path, name: str,
              extra: tuple[str, ...] = (), watch: str = "") -> Reference:  # fmt: skip
    """Trains `spec` uninterrupted in work/<name>, logging its writes under run_dir/watch."""
    run_dir = work / name
    log = work / f"{name}.writes"
    finished = run(f"apps.{spec.app}", [*spec.train_argv(run_dir, data), *extra],
                   inject=([run_dir / watch], 0, log))  # fmt: skip
    if finished.returncode != 0:
        raise RuntimeError(f"the reference run {run_dir} failed: {finished.stderr[-2000:]}")
    return Reference(run_dir, finished.wall_s, _events(log))


def _committed_epoch(run_dir: Path) -> int:
    return int(read_json(run_dir / "backup" / "training_metadata.json").get("epoch", 0))


def _relative(path: str, run_dir: Path) -> str:
    return path.split(str(run_dir) + "/", 1)[-1]


def kill_trial(spec: AppSpec, data: dict[str, Path], work: Path, ref: Reference,
               rng: random.Random, index: int) -> Trial:  # fmt: skip
    run_dir = work / f"{spec.app}_kill{index}"
    argv = spec.train_argv(run_dir, data)
    module = f"apps.{spec.app}"
    if index % 2 and ref.events:
        point = rng.randint(1, len(ref.events))
        _, kind, path = ref.events[point - 1]
        how = f"killed at write {point}/{len(ref.events)} ({kind} {_relative(path, run_dir=ref.run_dir)})"
        first = run(module, argv, inject=([run_dir], point, None))
    else:
        seconds = rng.uniform(ref.first_write_s, ref.wall_s)
        how = f"killed at {seconds:.1f} s (reference: first write {ref.first_write_s:.1f} s, end {ref.wall_s:.1f} s)"
        first = run(module, argv, kill_after_s=seconds)
    if not first.killed:
        how += f"; it ended first (exit {first.returncode})"
    committed = _committed_epoch(run_dir)
    second = run(module, argv)
    problems = _training_problems(spec, run_dir, second, committed, ref)
    equal = None
    if not problems or spec.equal_weights:
        equal = weights_differ(ref.run_dir / "checkpoints" / "final.keras",
                               run_dir / "checkpoints" / "final.keras")  # fmt: skip
        if spec.equal_weights and equal:
            problems.append(equal)
    detail = f"{how}; {committed} epochs committed; "
    detail += "; ".join(problems) if problems else (
        f"resumed at epoch {committed + 1}, epochs 0-{spec.epochs - 1} once each, final weights "
        + ("bit-equal" if equal is None else "not equal (not promised)"))
    return Trial("kill", spec.app, not problems, detail)


def _training_problems(spec: AppSpec, run_dir: Path, rerun, committed: int, ref: Reference) -> list[str]:
    if rerun.returncode != 0:
        lines = [line for line in rerun.stderr.splitlines() if line.strip()]
        return [f"the rerun failed (exit {rerun.returncode}): {lines[-1][:300] if lines else ''}"]
    problems = []
    begun = [int(match.group(1)) for match in _EPOCH_LINE.finditer(rerun.stdout)]
    if committed < spec.epochs and (not begun or begun[0] != committed + 1):
        problems.append(f"the rerun began at epoch {begun[:1]} after {committed} committed")
    epochs = history_epochs(run_dir)
    if epochs != list(range(spec.epochs)):
        problems.append(f"history.csv epochs {epochs}")
    trained = read_json(run_dir / "metrics.json").get("epochs_trained")
    if trained != spec.epochs:
        problems.append(f"metrics.json epochs_trained {trained}")
    return problems


# --------------------------------------------------------------------------- vocabularies

#: Tokenizer builds: (name, app, flags added to the app's tiny train command).
VOCABULARIES = (
    ("sentiment_words", "sentiment", ()),
    ("sentiment_sentencepiece", "sentiment", ("--tokenizer", "sentencepiece")),
    ("tagging", "tagging", ()),
    ("translation_joint", "translation", ()),
    ("translation_separate", "translation", ("--vocabulary", "separate")),
    ("language_model_word", "language_model", ()),
    ("language_model_sentencepiece", "language_model", ("--tokenizer", "sentencepiece", "--vocab-size", "40")),
)


def _visible_files(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())
            if path.is_file() and not path.name.startswith(".")}  # fmt: skip


def vocabulary_trial(name: str, spec: AppSpec, extra: tuple[str, ...], data: dict[str, Path],
                     work: Path, ref: Reference, point: int) -> Trial:  # fmt: skip
    """Kills the one-epoch run at its `point`-th write into vocab/, reruns it, and checks
    that the rerun trained with the reference's tokenizer files."""
    spec = dataclasses.replace(spec, epochs=1)
    run_dir = work / f"{name}_vocab{point}"
    argv = [*spec.train_argv(run_dir, data), *extra]
    module = f"apps.{spec.app}"
    _, kind, path = ref.events[point - 1]
    how = f"killed at vocabulary write {point}/{len(ref.events)} ({kind} {_relative(path, ref.run_dir)})"
    first = run(module, argv, inject=([run_dir / "vocab"], point, None))
    if not first.killed:
        how += f"; it ended first (exit {first.returncode})"
    partial = sorted(_visible_files(run_dir / "vocab"))
    second = run(module, argv)
    problems = _training_problems(spec, run_dir, second, _committed_epoch(run_dir), ref)
    if not problems:
        expected, got = _visible_files(ref.run_dir / "vocab"), _visible_files(run_dir / "vocab")
        if sorted(expected) != sorted(got):
            problems.append(f"vocab files {sorted(got)}, not {sorted(expected)}")
        else:
            problems += [f"vocab/{file} differs from the uninterrupted run's" for file in expected
                         if expected[file] != got[file]]  # fmt: skip
    detail = f"{how}; files left: {partial or 'none'}; " + (
        "; ".join(problems) if problems else "the rerun trained with the uninterrupted run's files")
    return Trial("vocabulary", name, not problems, detail)


def run_kills(work: Path, data: dict[str, Path], apps: list[str], trials: int,
              rng: random.Random, tally) -> None:  # fmt: skip
    for app in apps:
        spec = APPS[app]
        ref = reference(spec, data, work, f"{app}_reference")
        for index in range(trials):
            tally.add(kill_trial(spec, data, work, ref, rng, index))


def run_vocabularies(work: Path, data: dict[str, Path], names: list[str], trials: int,
                     rng: random.Random, tally) -> None:  # fmt: skip
    """`trials` kills per tokenizer build of `names`, at its writes in turn (in an order
    drawn from the seed; every write once before any twice)."""
    for name, app, extra in VOCABULARIES:
        if name not in names:
            continue
        spec = dataclasses.replace(APPS[app], epochs=1)
        ref = reference(spec, data, work, f"{name}_vocab_reference", extra, watch="vocab")
        if not ref.events:
            raise RuntimeError(f"{name}: the reference run wrote nothing into vocab/")
        points: list[int] = []
        while len(points) < trials:
            points += rng.sample(range(1, len(ref.events) + 1), len(ref.events))
        for point in points[:trials]:
            tally.add(vocabulary_trial(name, spec, extra, data, work, ref, point))


# --------------------------------------------------------------------------- tuner searches

#: A tiny search of the adding problem: two epochs a trial, two cells, small widths.
TUNER_OPTIONS = ("--epochs", "2", "--cells", "lstm,gru", "--units", "4,8", "--batch-size", "16",
                 "--steps-per-epoch", "2", "--length", "6", "--train-examples", "64",
                 "--test-examples", "32")  # fmt: skip


@functools.cache
def _tuner_takes_a_task() -> bool:
    """Whether this checkout's tuner reads `search TASK` (else `search --task TASK`)."""
    return "TASK" in run("tuning", ["search", "--help"], timeout=300).stdout


def tuner_argv(run_dir: Path, max_trials: int) -> list[str]:
    """`python -m tuning search` of the tiny adding search into `run_dir`."""
    common = ["--run-dir", str(run_dir), "--max-trials", str(max_trials), *TUNER_OPTIONS]
    if _tuner_takes_a_task():
        return ["search", "adding", *common, "--valid-examples", "32"]
    return ["search", "--task", "adding", *common, "--validation-examples", "32"]


def _trials(run_dir: Path) -> dict[str, dict]:
    """{trial id: trial.json} of a search's keras-tuner project."""
    found = {}
    for path in sorted((run_dir / "project").glob("trial_*/trial.json")):
        record = read_json(path)
        found[record.get("trial_id", path.parent.name)] = record
    return found


def tuner_reference(work: Path, max_trials: int) -> Reference:
    run_dir = work / "tuner_reference"
    argv = tuner_argv(run_dir, max_trials)
    log = work / "tuner_reference.writes"
    finished = run("tuning", argv, inject=([run_dir], 0, log))
    if finished.returncode != 0:
        raise RuntimeError(f"the reference search failed: {finished.stderr[-2000:]}")
    return Reference(run_dir, finished.wall_s, _events(log))


def tuner_trial(work: Path, ref: Reference, max_trials: int, rng: random.Random, index: int) -> Trial:
    """Kills a search at a random time, reruns it, and checks that every trial completed
    once: the `max_trials` trials all COMPLETED, and those completed before the kill kept
    their values and scores (not run again)."""
    run_dir = work / f"tuner_kill{index}"
    argv = tuner_argv(run_dir, max_trials)
    seconds = rng.uniform(ref.first_write_s, ref.wall_s)
    first = run("tuning", argv, kill_after_s=seconds)
    how = f"killed at {seconds:.1f} s (reference: first write {ref.first_write_s:.1f} s, end {ref.wall_s:.1f} s)"
    if not first.killed:
        how += f"; it ended first (exit {first.returncode})"
    done_before = {key: (record.get("hyperparameters"), record.get("score"))
                   for key, record in _trials(run_dir).items() if record.get("status") == "COMPLETED"}  # fmt: skip
    second = run("tuning", argv)
    problems = []
    if second.returncode != 0:
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        problems.append(f"the rerun failed (exit {second.returncode}): {lines[-1][:300] if lines else ''}")
    trials = _trials(run_dir)
    completed = [key for key, record in trials.items() if record.get("status") == "COMPLETED"]
    if len(completed) != max_trials:
        statuses = sorted(record.get("status") for record in trials.values())
        problems.append(f"{len(completed)} trials COMPLETED of {max_trials} (statuses {statuses})")
    changed = [key for key, before in done_before.items()
               if (trials.get(key, {}).get("hyperparameters"), trials.get(key, {}).get("score")) != before]  # fmt: skip
    if changed:
        problems.append(f"trials completed before the kill were run again: {changed}")
    detail = f"{how}; {len(done_before)} trials completed before the kill; " + (
        "; ".join(problems) if problems else f"all {max_trials} completed once, the earlier ones kept")
    return Trial("kill", "tuner", not problems, detail)


def run_tuner(work: Path, trials: int, max_trials: int, rng: random.Random, tally) -> None:
    ref = tuner_reference(work, max_trials)
    for index in range(trials):
        tally.add(tuner_trial(work, ref, max_trials, rng, index))
