"""The shared command line: options declared once and checked before any work, each
command listing only its options, one-line errors, and no TensorFlow for --help."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.common.cli import prepare
from apps.common.config import SCOPES, _metadata, check_config, fields_in

REPO = Path(__file__).resolve().parents[2]
APPS = ("adding", "sentiment", "tagging", "translation", "language_model", "captioning")


def _app(name: str):
    module = importlib.import_module(f"apps.{name}.__main__")
    config_module = importlib.import_module(f"apps.{name}.config")
    config_cls = next(
        value for value in vars(config_module).values()
        if dataclasses.is_dataclass(value) and value.__module__ == config_module.__name__
    )
    return module, config_cls


def _prepare(app: str, argv: list[str]):
    module, config_cls = _app(app)
    return prepare(app, config_cls, module.COMMANDS, argv)


@pytest.mark.parametrize("app", APPS)
def test_every_option_is_declared_with_help_and_a_scope(app):
    _, config_cls = _app(app)
    for field in dataclasses.fields(config_cls):
        metadata = _metadata(config_cls, field.name)
        assert metadata["help"], f"{app}: --{field.name} has no help"
        assert metadata["scope"] in SCOPES
    check_config(config_cls())  # the defaults are valid


@pytest.mark.parametrize("app", APPS)
def test_evaluate_predict_export_list_no_training_options(app, capsys):
    module, config_cls = _app(app)
    training_flags = {
        "--" + field.name.replace("_", "-") for field in fields_in(config_cls, ("model", "train"))
    }
    for command in ("evaluate", "export", "predict"):
        if command not in module.COMMANDS:
            continue
        with pytest.raises(SystemExit) as exit_info:
            module.main([command, "--help"])
        assert exit_info.value.code == 0
        listed = {word.rstrip(",") for word in capsys.readouterr().out.split() if word.startswith("--")}
        assert not listed & training_flags, f"{app} {command} lists {sorted(listed & training_flags)}"
    with pytest.raises(SystemExit):
        module.main(["train", "--help"])
    text = capsys.readouterr().out
    assert "--learning-rate" in text and "(> 0; default:" in text.replace("\n", " ").replace("  ", " ")


@pytest.mark.parametrize(
    ("app", "argv", "message"),
    [
        ("adding", ["--learning-rate", "-1"], "--learning-rate must be > 0; got -1.0"),
        ("adding", ["--epochs", "-1"], "--epochs must be >= 1; got -1"),
        ("adding", ["--batch-size", "0"], "--batch-size must be >= 1; got 0"),
        ("adding", ["--cell", "foo"], "--cell must be one of rnn, irnn"),
        ("adding", ["--ema-momentum", "1"], "--ema-momentum must be >= 0 and < 1; got 1.0"),
        ("tagging", ["--max-word-length", "0"], "--max-word-length must be >= 1; got 0"),
        ("tagging", ["--dropout", "1.5"], "--dropout must be >= 0 and < 1"),
        ("translation", ["--beam-width", "0"], "--beam-width must be >= 1; got 0"),
        ("sentiment", ["--mixed-precision", "fp8"], "--mixed-precision must be one of auto"),
        ("language_model", ["--bptt", "0"], "--bptt must be >= 1; got 0"),
    ],
)
def test_an_option_out_of_range_is_refused_before_any_work(app, argv, message, tmp_path):
    # The data files do not exist: an error about the option proves it was checked first.
    with pytest.raises(ValueError) as error:
        _prepare(app, ["train", "--run-dir", str(tmp_path / "run"), *argv])
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()  # nothing was made


def test_nan_is_not_a_value(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _prepare("adding", ["train", "--learning-rate", "nan"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and error.count("\n") == 1 and "NaN" in error


def _train_tiny_adding(run_dir: Path, *extra: str):
    from apps.adding.__main__ import main

    return main(["train", "--run-dir", str(run_dir), "--length", "4", "--units", "4",
                 "--train-examples", "64", "--valid-examples", "32", "--test-examples", "32",
                 "--batch-size", "16", "--steps-per-epoch", "2", "--epochs", "1", "--verbose", "0",
                 *extra])


def test_a_refused_train_leaves_the_run_directory_as_it_was(tmp_path):
    run_dir = tmp_path / "run"
    _train_tiny_adding(run_dir)
    saved = (run_dir / "config.json").read_text()
    listing = sorted(str(path) for path in run_dir.rglob("*"))
    for bad in (["--cell", "foo"], ["--learning-rate", "-1"]):
        with pytest.raises(ValueError):
            _prepare("adding", ["train", "--run-dir", str(run_dir), *bad])
    assert (run_dir / "config.json").read_text() == saved
    assert sorted(str(path) for path in run_dir.rglob("*")) == listing
    evaluated = _app("adding")[0].main(["evaluate", "--run-dir", str(run_dir)])  # still usable
    assert "valid_mse" in evaluated


def test_resuming_with_another_model_is_one_clear_line(tmp_path):
    run_dir = tmp_path / "run"
    _train_tiny_adding(run_dir)
    with pytest.raises(ValueError) as error:
        _prepare("adding", ["train", "--run-dir", str(run_dir), "--units", "16"])
    text = str(error.value)
    assert "--units 4 -> 16" in text and "new --run-dir" in text and "\n" not in text
    # Training options may change on resume (more epochs, a lower rate).
    _prepare("adding", ["train", "--run-dir", str(run_dir), "--epochs", "3"])
    assert json.loads((run_dir / "config.json").read_text())["units"] == 4


def run_without_tensorflow(app: str, argvs: list[list[str]]) -> str:
    """Runs `python -m apps.<app>` with each of `argvs` in one fresh process (option
    errors and --help exit) and asserts that neither TensorFlow nor Keras was imported;
    returns the output."""
    script = (
        "import sys\n"
        f"from apps.{app}.__main__ import main\n"
        f"for argv in {argvs!r}:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except (SystemExit, ValueError):\n"
        "        pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)), check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
    return result.stdout


@pytest.mark.parametrize("app", APPS)
def test_help_and_option_errors_answer_without_tensorflow(app):
    run_without_tensorflow(app, [["train", "--help"], ["train", "--epochs", "0"], ["evaluate", "--help"]])


def test_a_bad_option_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "apps.translation", "train", "--run-dir", str(tmp_path / "r"),
         "--beam-width", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert result.returncode == 2
    assert result.stderr == "error: --beam-width must be >= 1; got 0\n"
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- found by the fault campaign


@pytest.mark.parametrize("value", ["inf", "-inf", "1e400"])
def test_an_infinite_value_is_not_a_number(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _prepare("adding", ["train", "--run-dir", str(tmp_path / "run"), "--clip-norm", value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and error.count("\n") == 1 and "--clip-norm" in error
    assert not (tmp_path / "run").exists()


def test_a_config_file_nested_too_deeply_is_one_line(tmp_path):
    config = tmp_path / "deep.json"
    config.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="deep.json: not valid JSON"):
        _prepare("adding", ["train", "--run-dir", str(tmp_path / "run"), "--config", str(config)])


@pytest.mark.slow
def test_bad_data_found_by_a_command_leaves_the_run_directory_as_it_was(tmp_path):
    """The data is read after the options are accepted: a new run directory is removed, an
    existing one gets its config back, and files the command made are removed."""
    from apps.sentiment.__main__ import main

    missing = str(tmp_path / "no_such_folder")
    flags = ["--data-dir", missing, "--epochs", "1", "--verbose", "0"]
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        main(["train", "--run-dir", str(tmp_path / "new"), *flags])
    assert not (tmp_path / "new").exists()
    run = tmp_path / "old"
    run.mkdir()
    (run / "keep.txt").write_text("mine")
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        main(["train", "--run-dir", str(run), *flags])
    assert sorted(path.name for path in run.iterdir()) == ["keep.txt"]
