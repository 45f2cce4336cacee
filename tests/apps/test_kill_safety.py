"""A process killed (SIGKILL) at any write leaves state that a rerun can trust.

Training: the backup is committed by its record (apps.common.callbacks.AtomicBackupAndRestore)
and history rows of uncommitted epochs are dropped on resume (`resume_history`), so a run
killed while writing its first history row, or between an epoch's weights and its record,
resumes with each epoch once and ends bit-equal to an uninterrupted run. A language-model
tokenizer killed at any of its writes is trained again, never loaded half written. The
kills are placed at exact writes by `benchmarks.reliability.inject`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from benchmarks.reliability.common import history_epochs, run, weights_differ

ADDING = ["--length", "6", "--units", "8", "--train-examples", "256", "--valid-examples", "64",
          "--test-examples", "64", "--batch-size", "16", "--steps-per-epoch", "4", "--stop-mse", "0",
          "--epochs", "3", "--verbose", "0", "--mixed-precision", "float32"]  # fmt: skip


def _train(run_dir: Path, kill_at: int = 0, log: Path | None = None):
    return run("apps.adding", ["train", "--run-dir", str(run_dir), *ADDING], inject=([run_dir], kill_at, log))


def _writes(log: Path) -> list[tuple[str, str]]:
    return [tuple(line.split("\t")[2:4]) for line in log.read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, list[tuple[str, str]]]:
    """An uninterrupted run and its writes ((kind, path) in order)."""
    folder = tmp_path_factory.mktemp("kills")
    finished = _train(folder / "reference", log=folder / "writes.log")
    assert finished.returncode == 0, finished.stderr[-2000:]
    return folder / "reference", _writes(folder / "writes.log")


def _first_history_row(writes) -> int:
    return next(i for i, (_, path) in enumerate(writes) if path.endswith("history.csv")) + 1


def _second_backup_record(writes) -> int:
    """The first write after the second epoch's backup weights (Keras's callback: its
    record, written in place)."""
    weights = [i for i, (kind, _) in enumerate(writes) if kind == "h5py"]
    return weights[1] + 2


@pytest.mark.slow
@pytest.mark.parametrize("point", [_first_history_row, _second_backup_record])
def test_a_run_killed_at_a_write_resumes_like_an_uninterrupted_run(reference, point, tmp_path):
    reference_dir, writes = reference
    at = point(writes)
    killed = _train(tmp_path / "run", kill_at=at)
    assert killed.killed, f"not killed at write {at} {writes[at - 1]}: {killed.stderr[-1000:]}"
    rerun = _train(tmp_path / "run")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert history_epochs(tmp_path / "run") == [0, 1, 2]
    difference = weights_differ(reference_dir / "checkpoints" / "final.keras",
                                tmp_path / "run" / "checkpoints" / "final.keras")  # fmt: skip
    assert difference is None, f"killed at {writes[at - 1]}: {difference}"


TOKENIZER_SCRIPT = textwrap.dedent(
    """
    import sys
    from apps.language_model.config import LanguageModelConfig
    from apps.language_model.tokens import load_or_train

    config = LanguageModelConfig(tokenizer=sys.argv[2])
    text = open(sys.argv[3], encoding="utf-8").read()
    load_or_train(config, text, sys.argv[1])
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["word"])
def test_a_tokenizer_killed_at_any_write_is_trained_again_not_trusted(kind, tmp_path):
    from apps.language_model.config import LanguageModelConfig
    from apps.language_model.tokens import load_or_train

    script, text = tmp_path / "tokenize.py", tmp_path / "text.txt"
    script.write_text(TOKENIZER_SCRIPT)
    text.write_text("the cat sat on the mat\nthe dog ate the cat\n" * 20, encoding="utf-8")
    config = LanguageModelConfig(tokenizer=kind)
    whole = load_or_train(config, text.read_text(encoding="utf-8"), str(tmp_path / "whole"))
    log = tmp_path / "writes.log"
    argv = [str(tmp_path / "counted"), kind, str(text)]
    assert run(str(script), argv, inject=([tmp_path / "counted"], 0, log)).returncode == 0
    count = len(_writes(log))
    assert count >= 2
    for at in range(1, count + 1):
        folder = tmp_path / f"killed{at}"
        killed = run(str(script), [str(folder), kind, str(text)], inject=([folder], at, None))
        assert killed.killed, killed.stderr[-1000:]
        again = load_or_train(config, text.read_text(encoding="utf-8"), str(folder))
        assert (again.kind, again.tokens) == (whole.kind, whole.tokens), f"killed at write {at}"


def test_a_backup_keeps_the_one_before_it_and_resumes_from_either(tmp_path):
    """The backup record names the previous backup, whose weights stay: a multi-worker
    run resumes every worker from the epoch all of them committed (the two-worker case
    runs in `python -m benchmarks.reliability`'s multi_worker trials)."""
    import keras
    import numpy as np

    from apps.common.callbacks import AtomicBackupAndRestore, backup_generation, read_backup_record

    x, y = np.ones((8, 2), "float32"), np.ones((8, 1), "float32")

    def fit(resume_epoch=None) -> keras.Model:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        backup = AtomicBackupAndRestore(str(tmp_path), resume_epoch=resume_epoch, delete_checkpoint=False)
        model.fit(x, y, epochs=3, verbose=0, callbacks=[backup])
        return model

    fit()
    record = read_backup_record(tmp_path)
    assert (record["epoch"], record["previous"]["epoch"]) == (3, 2)
    assert record["previous"].get("previous") is None  # one generation back, not a chain
    assert sorted(path.name for path in tmp_path.glob("*.weights.h5")) == sorted(
        [record["weights"], record["previous"]["weights"]]
    )
    assert backup_generation(tmp_path, None) == record == backup_generation(tmp_path, 3)
    assert backup_generation(tmp_path, 2) == record["previous"]
    assert backup_generation(tmp_path, 0) is None  # a new start
    with pytest.raises(ValueError, match="no backup after epoch 1"):
        backup_generation(tmp_path, 1)
    resumed = fit(resume_epoch=2)  # trains the third epoch again, from the second's backup
    assert resumed.history.epoch == [2]
