"""The adding-problem app and the offline demo, shortened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apps.adding.__main__ import main

REPO = Path(__file__).resolve().parents[2]
TINY = ["--length", "12", "--units", "8", "--train-examples", "256", "--valid-examples", "64",
        "--test-examples", "64", "--batch-size", "32", "--steps-per-epoch", "4", "--verbose", "0"]
MEAN_PREDICTOR_MSE = 1 / 6


def test_demo_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    run_dir = tmp_path / "demo"
    rows = main(["demo", "--run-dir", str(run_dir), "--epochs", "2", "--demo-cells", "rnn,lstm,gru",
                 *TINY])
    output = capsys.readouterr().out
    assert [row["model"] for row in rows] == ["rnn", "lstm", "gru"]
    header = next(line for line in output.splitlines() if line.startswith("| model"))
    assert "parameters" in header and "final test MSE" in header and "steps to MSE < 0.01" in header
    for name in ("rnn", "lstm", "gru"):
        assert any(line.startswith(f"| {name} ") for line in output.splitlines())
    # parameter counts of the three cells with 8 units and 2 inputs, plus the 9-weight read-out
    counts = {row["model"]: row["parameters"] for row in rows}
    assert counts["rnn"] == (2 * 8 + 8 * 8 + 8) + 9
    assert counts["lstm"] == 4 * (2 * 8 + 8 * 8 + 8) + 9
    assert (run_dir / "plots" / "adding_learning_curves.png").stat().st_size > 1000
    assert json.loads((run_dir / "metrics.json").read_text())["demo"][0]["model"] == "rnn"


@pytest.mark.slow
def test_train_learns_the_sum_and_the_export_reloads_in_a_fresh_process(tmp_path):
    run_dir = tmp_path / "run"
    short = ["--length", "6", "--units", "16", "--train-examples", "2048", "--valid-examples",
             "256", "--test-examples", "256", "--batch-size", "32", "--steps-per-epoch", "20",
             "--verbose", "0"]
    metrics = main(["train", "--run-dir", str(run_dir), "--cell", "gru", "--epochs", "15",
                    "--learning-rate", "0.01", "--stop-mse", "0", *short])
    # Learning, not just a falling loss: far below always answering the mean (1/6).
    assert metrics["valid_mse"] < MEAN_PREDICTOR_MSE / 10
    tested = main(["evaluate", "--run-dir", str(run_dir), "--split", "test"])
    assert tested["test_mse"] < MEAN_PREDICTOR_MSE / 10
    assert tested["split"] == "test" and tested["checkpoint"].startswith("best.keras@")

    export_dir = main(["export", "--run-dir", str(run_dir)])
    assert (export_dir / "saved_model.pb").exists()
    in_memory = main(["predict", "--run-dir", str(run_dir), "--num-examples", "4"])
    script = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        "from pipelines.procedural import adding_problem\n"
        "x = np.stack([a.numpy() for a, _ in adding_problem(4, 6, seed=7)])\n"
        "served = tf.saved_model.load(sys.argv[1])\n"
        "print(json.dumps(served.serve(x.astype('float32')).numpy().ravel().tolist()))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script, str(export_dir)], capture_output=True,
                            text=True, env=env, timeout=180, check=True)
    reloaded = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(reloaded, np.ravel(in_memory), rtol=1e-5, atol=1e-6)


def test_evaluate_needs_an_existing_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--run-dir", str(tmp_path / "missing")])
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_a_resumed_run_follows_the_uninterrupted_path_and_sums_its_time(tmp_path):
    args = ["--length", "6", "--units", "8", "--train-examples", "512", "--valid-examples", "64",
            "--test-examples", "64", "--batch-size", "16", "--steps-per-epoch", "5",
            "--verbose", "0", "--stop-mse", "0"]
    main(["train", "--run-dir", str(tmp_path / "whole"), "--epochs", "4", *args])
    main(["train", "--run-dir", str(tmp_path / "split"), "--epochs", "2", *args])
    clock = tmp_path / "split" / "backup" / "clock.json"
    clock.write_text(json.dumps({"wall_s": 1000.0, "cpu_s": 500.0}))  # a long first process
    resumed = main(["train", "--run-dir", str(tmp_path / "split"), "--epochs", "4", *args])
    assert resumed["epochs_trained"] == 4
    assert resumed["train_wall_time_s"] >= 1000.0 and resumed["train_cpu_time_s"] >= 500.0
    import keras

    whole = keras.saving.load_model(tmp_path / "whole" / "checkpoints" / "final.keras")
    split = keras.saving.load_model(tmp_path / "split" / "checkpoints" / "final.keras")
    for expected, got in zip(whole.get_weights(), split.get_weights()):
        np.testing.assert_array_equal(got, expected)  # the same batches, the same steps
