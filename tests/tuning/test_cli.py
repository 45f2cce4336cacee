"""`python -m tuning`: each option declared once with its range and checked before any
work (one line, exit status 2), each task listing only its options, and no TensorFlow
for --help or a bad option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tuning.tiny_search import search_arguments
from tuning.__main__ import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-trials", "0"], "--max-trials must be >= 1; got 0"),
        (["--epochs", "0"], "--epochs must be >= 1; got 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1; got 0"),
        (["--length", "1"], "--length must be >= 2; got 1"),
        (["--units", "0,8"], "--units must be >= 1; got '0,8'"),
        (["--units", "8,4"], "--units: the lower end 8 is above the upper end 4"),
        (["--learning-rate", "1e-3,1e-2,1e-1"], "--learning-rate takes MIN,MAX or one value"),
        (["--momentum", "0.5,1"], "--momentum must be > 0 and < 1"),
        (["--clip-norms", "-1"], "--clip-norms must be >= 0"),
        (["--hyperband-factor", "1"], "--hyperband-factor must be >= 2; got 1"),
        (["--oracle", "hyperband", "--per-variant", "2"], "--per-variant needs --oracle random"),
        (["--cells", "lstmx"], "unknown cell 'lstmx'"),
    ],
)
def test_an_out_of_range_search_option_is_refused_before_any_work(argv, message, tmp_path):
    with pytest.raises(ValueError) as error:
        main([*search_arguments(tmp_path / "run"), *argv])
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "RUN", "--alpha", "1"], "--alpha must be > 0 and < 1; got 1.0"),
        (["report", "RUN", "--top-fraction", "0"], "--top-fraction must be > 0 and <= 1"),
        (["demo", "--trials", "0"], "--trials must be >= 1; got 0"),
        (["demo", "--cells", "vanilla,foo"], "--cells must be one of rnn"),
        (["search", "adding"], "--run-dir is required"),
    ],
)
def test_report_and_demo_options_are_checked_too(argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        main(argv)


@pytest.mark.parametrize(
    ("task", "listed", "not_listed"),
    [
        ("adding", ["--length", "--train-examples", "--lr-schedule"],
         ["--cell", "--optimizer", "--dropout", "--input-noise", "--stop-mse", "--demo-cells",
          "--ema-momentum", "--mixed-precision", "--monitor", "--max-train-minutes"]),
        ("jsb", ["--data", "--input-noise", "--dropout", "--batch-size"], ["--cell", "--length"]),
        ("tagging", ["--task", "--decoding", "--train-file", "--dropout"],
         ["--cell", "--optimizer", "--clip-norm", "--monitor", "--mixed-precision"]),
        ("translation", ["--scheduled-sampling-type", "--encoder-layers"],
         ["--encoder-cell", "--decoder-units", "--bleu-every-epochs", "--init-from-run"]),
    ],
)
def test_each_task_lists_only_the_options_a_search_applies(task, listed, not_listed, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", task, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    flags = {word.strip(",[]") for word in text.split() if word.startswith(("--", "[--"))}
    for option in listed:
        assert option in flags, option
    for option in not_listed:
        assert option not in flags, option
    assert "(>= 1; default:" in text  # each option says its range and default


def _run(*argv: str) -> subprocess.CompletedProcess:
    """`python -m tuning ARGV` in a fresh process that reports whether TensorFlow or Keras
    was imported."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('imported:', sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('tensorflow', 'keras', 'keras_tuner')), file=sys.stderr))\n"
        "import runpy\n"
        f"sys.argv = ['python -m tuning', *{list(argv)!r}]\n"
        "runpy.run_module('tuning', run_name='__main__')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def test_help_and_a_bad_option_answer_in_one_line_without_tensorflow(tmp_path):
    for argv in (["--help"], ["search", "--help"], ["search", "translation", "--help"],
                 ["demo", "--help"]):
        result = _run(*argv)
        assert result.returncode == 0 and result.stderr == "imported: []\n", (argv, result.stderr)
    run_dir = str(tmp_path / "run")
    for argv, message in [
        (["search", "adding", "--run-dir", run_dir, "--max-trials", "0"],
         "error: --max-trials must be >= 1; got 0\n"),
        (["search", "adding", "--run-dir", run_dir, "--epochs", "x"],
         "error: python -m tuning search adding: argument --epochs: invalid int value: 'x' "
         "(see --help)\n"),
    ]:
        result = _run(*argv)
        assert result.returncode == 2, result.stderr
        assert result.stderr == message + "imported: []\n"
    assert not Path(run_dir).exists()
