"""The shared app harness: config resolution, resumable training, strategies."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from apps.common.config import (
    TrainConfig,
    load_config,
    parse_config,
    save_config,
)
from apps.common.plots import read_history
from apps.common.run_dir import RunDir
from apps.common.strategy import make_strategy

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class ToyConfig(TrainConfig):
    units: int = 8
    cells: list[str] = dataclasses.field(default_factory=lambda: ["lstm"])
    use_crf: bool = False


def test_flags_override_file_override_defaults(tmp_path):
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps({"units": 32, "learning_rate": 0.5, "epochs": 3}))
    config = parse_config(
        ToyConfig,
        ["--config", str(config_file), "--units", "64", "--cells", "gru,nig", "--use-crf", "true"],
    )
    assert config.units == 64  # flag beats file
    assert config.learning_rate == 0.5  # file beats default
    assert config.epochs == 3
    assert config.batch_size == TrainConfig.batch_size  # default
    assert config.cells == ["gru", "nig"]
    assert config.use_crf is True


def test_config_json_round_trip(tmp_path):
    config = ToyConfig(units=5, cells=["a", "b"], clip_norm=2.5, use_crf=True)
    save_config(config, tmp_path / "config.json")
    assert load_config(ToyConfig, tmp_path / "config.json") == config


def test_config_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"units": 3,\n "epochs": }')
    with pytest.raises(ValueError, match=r"bad.json:2: not valid JSON"):
        parse_config(ToyConfig, ["--config", str(bad)])
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"unitz": 3}')
    with pytest.raises(ValueError, match=r"unknown config keys \['unitz'\]"):
        parse_config(ToyConfig, ["--config", str(unknown)])
    with pytest.raises(SystemExit):
        parse_config(ToyConfig, ["--units", "many"])


def test_run_dir_layout_and_metrics_merge(tmp_path):
    run_dir = RunDir.create("toy", base=tmp_path)
    assert run_dir.root.parent == tmp_path / "toy"
    run_dir.write_metrics({"a": np.float32(1.5)})
    merged = run_dir.write_metrics({"b": [1, 2]})
    assert merged == {"a": 1.5, "b": [1, 2]}
    assert run_dir.next_export_dir().name == "1"
    (run_dir.export_root / "1").mkdir()
    assert run_dir.next_export_dir().name == "2"
    assert run_dir.latest_export_dir().name == "1"


def test_a_run_records_its_app_and_refuses_other_apps(tmp_path):
    run_dir = RunDir.create("sentiment", tmp_path / "run")
    assert json.loads((tmp_path / "run" / "run.json").read_text()) == {"app": "sentiment"}
    (tmp_path / "run" / "config.json").write_text('{"units": 3}')
    assert RunDir.create("sentiment", tmp_path / "run").app == "sentiment"  # resumed
    with pytest.raises(ValueError, match=r"run is a sentiment run, not a tagging run"):
        RunDir.create("tagging", tmp_path / "run")
    old = tmp_path / "old"  # made before runs recorded their app: opened, left as it was
    old.mkdir()
    (old / "config.json").write_text("{}")
    assert RunDir.create("tagging", old).app is None and not (old / "run.json").exists()
    assert run_dir.app == "sentiment"


@pytest.mark.parametrize(
    "argv",
    [
        ["python -m apps.tagging", "evaluate", "--run-dir", "{run}"],
        ["python -m apps.tagging", "ensemble", "--run-dir", "{other}", "--members", "{run}", "{run}2"],
        ["python -m apps.translation", "translate", "--run-dir", "{run}", "--input", "{run}/config.json"],
        ["python -m apps.language_model", "evaluate", "--run-dir", "{run}"],
    ],
)
def test_a_run_of_one_app_given_to_another_is_a_clear_error(argv, tmp_path):
    """A sentiment run given to another app's command: one line naming both apps."""
    import importlib

    for name in ("run", "run2"):
        RunDir.create("sentiment", tmp_path / name)
        (tmp_path / name / "config.json").write_text(json.dumps({"data_dir": "reviews", "units": 3}))
    module, *args = [part.format(run=tmp_path / "run", other=tmp_path / "other") for part in argv]
    main = importlib.import_module(module.split()[-1] + ".__main__").main
    with pytest.raises(ValueError, match=r"run is a sentiment run, not a \w+ run"):
        main(args)


TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import keras, numpy as np, tensorflow as tf
    from apps.common.cli import RunContext
    from apps.common.config import TrainConfig
    from apps.common.run_dir import RunDir
    from apps.common.training import train_model

    class KillAfter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            print("EPOCH_BEGIN", epoch, flush=True)
        def on_epoch_end(self, epoch, logs=None):
            if epoch == int(os.environ.get("KILL_AT_EPOCH", "-1")):
                os._exit(17)  # a hard kill: no cleanup, no exception handling

    config = TrainConfig(epochs=4, verbose=0, learning_rate=0.05, run_dir=sys.argv[1])
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)

    def build():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        return model

    ctx = RunContext(app="toy", config=config, run_dir=RunDir(sys.argv[1]), args=None)
    model, history = train_model(ctx, build, data, data, extra_callbacks=[KillAfter()])
    print("DONE", len(history["loss"]), flush=True)
    """
)


def _run_training(run_dir: Path, kill_at: int | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    if kill_at is not None:
        env["KILL_AT_EPOCH"] = str(kill_at)
    return subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(run_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=240,
    )


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tmp_path):
    run_dir = tmp_path / "run"
    first = _run_training(run_dir, kill_at=1)
    assert first.returncode == 17, first.stderr[-2000:]
    assert "EPOCH_BEGIN 0" in first.stdout and "EPOCH_BEGIN 1" in first.stdout
    assert "DONE" not in first.stdout

    second = _run_training(run_dir, kill_at=None)
    assert second.returncode == 0, second.stderr[-2000:]
    begun = [
        int(line.split()[1])
        for line in second.stdout.splitlines()
        if line.startswith("EPOCH_BEGIN")
    ]
    assert begun == [2, 3]  # resumed after the last completed epoch, nothing repeated
    history = read_history(run_dir / "history.csv")
    assert len(history["loss"]) == 4
    assert history["loss"][-1] < history["loss"][0]
    assert (run_dir / "checkpoints" / "best.keras").exists()
    assert (run_dir / "plots" / "learning_curves.png").exists()
    assert any((run_dir / "logs").rglob("events.out.tfevents.*"))


def test_mirrored_strategy_over_two_logical_cpus_trains(tmp_path):
    import keras
    import tensorflow as tf

    from apps.common.cli import RunContext
    from apps.common.training import train_model

    strategy = make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    config = TrainConfig(epochs=2, verbose=0, strategy="mirrored", learning_rate=0.05)
    x = np.random.default_rng(1).normal(size=(64, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)

    def build():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        return model

    ctx = RunContext(app="toy", config=config, run_dir=RunDir(tmp_path / "run"), args=None)
    model, history = train_model(ctx, build, data, None)
    assert len(history["loss"]) == 2
    assert history["loss"][1] < history["loss"][0]


def test_strategy_errors_are_clear(monkeypatch):
    with pytest.raises(ValueError, match="unknown strategy 'tpu'"):
        make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi_worker")


def test_clip_norm_reaches_the_optimizer():
    from apps.common.optimizer import make_optimizer

    optimizer = make_optimizer(TrainConfig(clip_norm=2.0, optimizer="sgd", learning_rate=0.1))
    assert optimizer.global_clipnorm == 2.0
    assert make_optimizer(TrainConfig()).global_clipnorm is None


def test_resumed_run_keeps_its_best_checkpoint(tmp_path):
    """A resumed run's checkpoint only replaces best.keras with an epoch better than the
    best one already in its history."""
    import keras

    from apps.common.callbacks import best_so_far, standard_callbacks

    run_dir = RunDir(tmp_path / "run")
    config = TrainConfig(monitor="val_accuracy")
    assert best_so_far(config, run_dir) is None  # a new run
    (run_dir.root / "history.csv").write_text(
        "epoch,loss,val_accuracy,val_loss\n0,0.6,0.80,0.5\n1,0.4,0.90,0.3\n2,0.3,0.85,0.4\n"
    )
    run_dir.best_model_path.write_bytes(b"")
    assert best_so_far(config, run_dir) == 0.90
    assert best_so_far(TrainConfig(monitor="val_loss"), run_dir) == 0.3
    (checkpoint,) = [
        c for c in standard_callbacks(config, run_dir) if isinstance(c, keras.callbacks.ModelCheckpoint)
    ]
    assert checkpoint.best == 0.90


def test_an_export_that_fails_midway_leaves_no_version_folder(tmp_path):
    """Exports are written under a temporary name and renamed when complete: TF Serving and
    `latest_export_dir` never see a partial SavedModel."""
    run_dir = RunDir(tmp_path / "run")

    def fails(folder: Path):
        folder.mkdir()
        (folder / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_dir.write_export(fails)
    with pytest.raises(FileNotFoundError, match="no exported model"):
        run_dir.latest_export_dir()
    path = run_dir.write_export(lambda folder: (folder.mkdir(), (folder / "saved_model.pb").write_bytes(b"whole")))
    assert path == run_dir.export_root / "1" == run_dir.latest_export_dir()
    assert [p.name for p in run_dir.export_root.iterdir()] == ["1"]  # the partial one removed


def test_resume_keeps_the_history_of_committed_epochs_only(tmp_path):
    """Rows of epochs after the backup's record (written before a kill, never committed)
    and a torn last row are dropped; a run with no committed epoch starts a new history."""
    from apps.common.callbacks import resume_history

    run_dir = RunDir(tmp_path / "run")
    path = run_dir.root / "history.csv"
    path.write_bytes(b"epoch,loss\r\n0,0.5\r\n1,0.4\r\n2,0.3\r\n3,0.")  # keras.callbacks.CSVLogger's
    resume_history(run_dir, 2)
    assert path.read_bytes() == b"epoch,loss\r\n0,0.5\r\n1,0.4\r\n"
    resume_history(run_dir, 2)  # nothing to drop: unchanged
    assert read_history(path) == {"loss": [0.5, 0.4]}
    resume_history(run_dir, 0)
    assert not path.exists()
