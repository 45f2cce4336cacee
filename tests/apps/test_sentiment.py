"""apps/sentiment: trains on generated reviews, exports raw-string serving, bad inputs."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from apps.common.cli import RunContext
from apps.common.plots import read_history
from apps.common.run_dir import RunDir
from apps.sentiment.__main__ import main
from apps.sentiment.config import SentimentConfig
from apps.sentiment.data import TextEncoder, build_vocabulary, load_split, make_dataset
from apps.sentiment.export import SIGNATURE, SentimentServer
from apps.sentiment.model import build_model
from pipelines.errors import DataFormatError, DataUnavailableError

REPO = Path(__file__).resolve().parents[2]
POSITIVE = ["good", "great", "excellent", "wonderful", "loved", "superb"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "hated", "dull"]
NEUTRAL = "the movie film plot actor was and a story scene it of to in this director music".split()

TINY = [
    "--epochs", "4", "--embedding-size", "16", "--units", "16", "--vocab-size", "200",
    "--min-frequency", "1", "--batch-size", "600", "--max-length", "60",
    "--length-bucket-width", "16", "--learning-rate", "0.01", "--verbose", "0",
    "--valid-fraction", "0.2", "--embedding-dropout", "0.1",
]  # fmt: skip

BAD_INPUTS = [
    b"",  # empty
    b"   \t ",  # whitespace only
    ("a wonderful film " * 12_000).encode(),  # ~200k characters
    "Très bon film, j'ai adoré ! 素晴らしい映画 😀".encode(),  # non-ASCII
    b"great \xff\xfe movie \xc3( with \x80 invalid UTF-8",  # invalid UTF-8 bytes
    b"<br /><br />",  # markup only
]


def make_reviews(count: int, seed: int) -> tuple[list[str], list[int]]:
    """Reviews of neutral words with a few sentiment words that decide the label."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(count):
        label = int(rng.integers(2))
        words = list(rng.choice(NEUTRAL, size=int(rng.integers(5, 40))))
        for word in rng.choice(POSITIVE if label else NEGATIVE, size=3):
            words.insert(int(rng.integers(len(words) + 1)), str(word))
        text = " ".join(words).capitalize() + rng.choice([".", "!", " <br /><br />"])
        texts.append(text)
        labels.append(label)
    return texts, labels


def write_data(folder: Path) -> Path:
    """train.jsonl.gz and test.tsv in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    texts, labels = make_reviews(400, seed=1)
    with gzip.open(folder / "train.jsonl.gz", "wt", encoding="utf-8") as handle:
        for text, label in zip(texts, labels):
            handle.write(json.dumps({"label": label, "text": text}) + "\n")
    texts, labels = make_reviews(100, seed=2)
    lines = ["label\ttext"] + [f"{label}\t{text}" for text, label in zip(texts, labels)]
    (folder / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny run: trained, evaluated and exported (shared by the tests below)."""
    root = tmp_path_factory.mktemp("sentiment")
    data_dir = write_data(root / "data")
    run_dir = root / "run"
    common = ["--run-dir", str(run_dir)]
    train_metrics = main(["train", "--data-dir", str(data_dir), *common, *TINY])
    test_metrics = main(["evaluate", *common, "--split", "test"])
    export_dir = main(["export", *common])
    return {
        "run_dir": run_dir,
        "data_dir": data_dir,
        "export_dir": export_dir,
        "train": train_metrics,
        "test": test_metrics,
    }


def _server(run_dir: Path) -> SentimentServer:
    from apps.sentiment.tasks import make_server

    config = SentimentConfig(**json.loads((run_dir / "config.json").read_text()))
    return make_server(RunContext("sentiment", config, RunDir(run_dir), None))


@pytest.mark.slow  # shares the module's trained run (~30 s once)
def test_tiny_model_trains_and_evaluates(trained_run):
    history = read_history(trained_run["run_dir"] / "history.csv")
    assert len(history["loss"]) == 4
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    train = trained_run["train"]
    assert train["train_examples"] == 320 and train["validation_examples"] == 80
    assert train["validation_accuracy"] > 0.75
    test = trained_run["test"]
    assert test["test_examples"] == 100  # every test example evaluated exactly once
    assert test["test_accuracy"] > 0.75
    assert (trained_run["run_dir"] / "vocab" / "words.txt").exists()
    assert (trained_run["run_dir"] / "checkpoints" / "best.keras").exists()


LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    from apps.common.export import load_export
    texts = [bytes.fromhex(h) for h in json.loads(sys.stdin.read())]
    served = load_export(sys.argv[1])
    out = served.signatures["serving_default"](texts=tf.constant(texts))
    print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))
    """
)


@pytest.mark.slow  # shares the module's trained run (~30 s once)
def test_export_reloads_in_a_fresh_process_and_matches(trained_run):
    texts = [t.encode() for t in make_reviews(5, seed=3)[0]] + BAD_INPUTS
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(trained_run["export_dir"])],
        input=json.dumps([t.hex() for t in texts]),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    server = _server(trained_run["run_dir"])  # keep it alive: serve() holds it weakly
    expected = server.serve(tf.constant(texts))
    np.testing.assert_allclose(served["probability"], expected["probability"].numpy(), atol=1e-5)
    assert served["num_tokens"] == expected["num_tokens"].numpy().tolist()


@pytest.mark.slow  # shares the module's trained run (~30 s once)
def test_bad_inputs_give_valid_probabilities(trained_run):
    server = _server(trained_run["run_dir"])
    outputs = server.serve(tf.constant(BAD_INPUTS))
    probability = outputs["probability"].numpy()
    num_tokens = outputs["num_tokens"].numpy()
    assert probability.shape == (len(BAD_INPUTS),)
    assert np.all(np.isfinite(probability)) and np.all((probability >= 0) & (probability <= 1))
    assert num_tokens[0] == 0 and num_tokens[1] == 0 and num_tokens[5] == 0
    assert num_tokens[2] == 60  # cut to max_length
    assert num_tokens[3] > 5 and num_tokens[4] > 5
    # An empty string does not change the other reviews' probabilities in the batch.
    alone = server.serve(tf.constant(BAD_INPUTS[2:5]))["probability"].numpy()
    np.testing.assert_allclose(alone, probability[2:5], atol=1e-5)
    # Positive and negative words still work next to invalid bytes.
    pair = server.serve(tf.constant([b"\xff great superb loved \xfe", b"\xff awful dull bad \xfe"]))
    first, second = pair["probability"].numpy()
    assert first > 0.5 > second


@pytest.mark.slow  # shares the module's trained run (~30 s once)
def test_predict_from_run_and_from_export(trained_run, tmp_path, capsys):
    reviews = tmp_path / "reviews.txt"
    reviews.write_bytes(b"a great superb wonderful film\n\n\xff\xfe awful boring dull\n")
    run = main(["predict", "--run-dir", str(trained_run["run_dir"]), "--input-file", str(reviews)])
    export = main(["predict", "--export-dir", str(trained_run["export_dir"]), "loved it", "--input-file", str(reviews)])
    np.testing.assert_allclose(export[1:], run, atol=1e-5)
    assert run[0] > 0.5 > run[2]
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 7 and "positive" in lines[0] and "negative" in lines[2]
    with pytest.raises(ValueError, match="--run-dir RUN_DIR .* or --export-dir"):
        main(["predict", "some text"])


def test_cli_errors_are_clear(tmp_path, monkeypatch, capsys):
    from apps.common.cli import main_guard
    from apps.common.config import check_config

    argv = ["train", "--data-dir", str(tmp_path / "missing"), "--run-dir", str(tmp_path / "run")]
    monkeypatch.setattr(sys, "argv", ["sentiment", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main_guard(main)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert "error: --data-dir" in stderr and "no such folder" in stderr
    with pytest.raises(FileNotFoundError, match=r"^--input-file .*missing.txt: no such file$"):
        main(["predict", "--input-file", str(tmp_path / "missing.txt"), "--export-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="--tokenizer must be one of"):
        check_config(SentimentConfig(tokenizer="chars"))
    with pytest.raises(ValueError, match="--pooling last needs the whole review"):
        check_config(SentimentConfig(pooling="last", segment_length=50))
    with pytest.raises(ValueError, match="needs 0 < --max-length <= --batch-size"):
        check_config(SentimentConfig(max_length=5000, batch_size=4000))


def test_local_folder_and_file_formats(tmp_path):
    folder = tmp_path / "aclImdb"
    for split, count in (("train", 3), ("test", 2)):
        for label in ("neg", "pos"):
            (folder / split / label).mkdir(parents=True)
            for index in range(count):
                (folder / split / label / f"{index}_7.txt").write_text(f"{label} review {index}")
    (folder / "train" / "unsup").mkdir()
    (folder / "train" / "unsup" / "0_0.txt").write_text("unlabelled")
    config = SentimentConfig(data_dir=str(tmp_path))  # the folder holding aclImdb/
    texts, labels = load_split(config, "train")
    assert len(texts) == 6 and labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert texts[0] == b"neg review 0"
    texts, labels = load_split(SentimentConfig(data_dir=str(folder)), "test")
    assert len(texts) == 4 and sorted(labels.tolist()) == [0, 0, 1, 1]

    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "train.csv").write_text('label,text\n1,"good, really"\n0,bad\n7,huh\n')
    with pytest.raises(DataFormatError, match=r"train.csv:4: label 7 out of range: 2 classes, ids 0 to 1"):
        load_split(SentimentConfig(data_dir=str(csv_dir)), "train")
    (csv_dir / "train.csv").write_text('label,text\nneg,bad\npos,"good, really"\nmeh,huh\n')
    with pytest.raises(DataFormatError, match=r"train.csv:3: label 'pos' \(id 2\) out of range"):
        load_split(SentimentConfig(data_dir=str(csv_dir)), "train")
    (csv_dir / "train.csv").write_text('label,text\n1,"good, really"\n0,bad,extra\n')
    with pytest.raises(DataFormatError, match=r"train.csv:3: expected 2 columns"):
        load_split(SentimentConfig(data_dir=str(csv_dir)), "train")
    with pytest.raises(FileNotFoundError, match=r"found no 'test' split; expected"):
        load_split(SentimentConfig(data_dir=str(csv_dir)), "test")


def test_tfds_path_with_mock_data(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    import pipelines.tfds_source

    # TFDS serves generated examples; the probe would otherwise find no network.
    monkeypatch.setattr(pipelines.tfds_source, "network_available", lambda *a, **k: True)
    config = SentimentConfig(tfds_data_dir=str(tmp_path / "tfds"), max_test_examples=5)
    with tfds.testing.mock_data(num_examples=12):
        texts, labels = load_split(config, "train")
        test_texts, _ = load_split(config, "test")
    assert len(texts) == 12 and set(labels.tolist()) <= {0, 1}
    assert isinstance(texts[0], bytes) and len(test_texts) == 5


def test_offline_tfds_fails_fast_naming_local_files(offline_tfds, tmp_path):
    with pytest.raises(DataUnavailableError, match="--data-dir"):
        load_split(SentimentConfig(tfds_data_dir=str(tmp_path / "empty")), "train")


@pytest.mark.slow  # SentencePiece training + SavedModel save/load: ~10-20 s
def test_sentencepiece_segments_and_export_round_trip(tmp_path):
    """SentencePiece tokenisation with chunked (segment) recurrence: the exported graph
    gives the in-memory model's probabilities, also for the bad inputs."""
    texts, labels = make_reviews(200, seed=4)
    config = SentimentConfig(
        tokenizer="sentencepiece", vocab_size=60, max_length=50, batch_size=500,
        segment_length=8, cell="cifg", embedding_size=8, units=8,
    )  # fmt: skip
    run_dir = RunDir(tmp_path / "run")
    build_vocabulary(config, np.array(texts, dtype=object), run_dir.vocab_dir)
    encoder = TextEncoder(config, run_dir.vocab_dir)
    dataset = make_dataset(np.array(texts, dtype=object), np.array(labels), encoder, config, training=False)
    seen = sum(int(ids.shape[0]) for ids, _ in dataset)
    assert seen == 200  # every example exactly once
    assert max(int(ids.shape[0] * ids.shape[1]) for ids, _ in dataset) <= 500  # token budget
    model = build_model(config, encoder.vocabulary_size)
    server = SentimentServer(model, encoder)
    inputs = tf.constant([t.encode() for t in texts[:3]] + BAD_INPUTS)
    expected = server.serve(inputs)
    path = tmp_path / "export"
    tf.saved_model.save(server, str(path), signatures={SIGNATURE: server.serve})
    from apps.common.export import load_export

    served = load_export(path).signatures[SIGNATURE](texts=inputs)
    np.testing.assert_allclose(served["probability"], expected["probability"], atol=1e-6)
    assert expected["num_tokens"].numpy()[3 + 2] == 50


@pytest.mark.slow  # trains a second tiny run (~20 s)
def test_ensemble_averages_members_and_exports(trained_run, tmp_path):
    from apps.common.ensemble import MEMBERS_FILE

    first = trained_run["run_dir"]
    second = tmp_path / "second"
    main(["train", "--data-dir", str(trained_run["data_dir"]), "--run-dir", str(second), *TINY, "--seed", "7"])
    main(["evaluate", "--run-dir", str(second), "--split", "test"])
    ensemble_dir = tmp_path / "ensemble"
    main(["ensemble", "--run-dir", str(ensemble_dir), "--members", str(first), str(second)])
    assert json.loads((ensemble_dir / MEMBERS_FILE).read_text())["members"] == [str(first), str(second)]
    config = json.loads((ensemble_dir / "config.json").read_text())
    assert config["data_dir"] == str(trained_run["data_dir"])  # the first member's data

    results_file = tmp_path / "results.json"
    metrics = main(["evaluate", "--run-dir", str(ensemble_dir), "--split", "test", "--results-file", str(results_file), "--results-name", "ens"])
    results = json.loads(results_file.read_text())
    assert results["ens_command"] == f"python -m apps.sentiment ensemble --members {first} {second}"
    assert "--seed 7 --units 16" in results["ens_member_commands"][1]
    assert results["ens_test_accuracy"] == metrics["test_accuracy"]
    assert results["ens_cell"] == "gru" and results["ens_members"] == [str(first), str(second)]
    # Each member, served from raw strings, scores what its own `evaluate` scored.
    member_metrics = [json.loads((run / "metrics.json").read_text()) for run in (first, second)]
    member_tests = [RunDir(run).latest_evaluation("test") for run in (first, second)]
    np.testing.assert_allclose(
        metrics["member_test_accuracies"], [m["test_accuracy"] for m in member_tests], atol=1e-9
    )
    assert metrics["test_examples"] == 100 and metrics["test_accuracy"] > 0.75
    assert metrics["train_wall_time_s"] == pytest.approx(
        sum(m["train_wall_time_s"] for m in member_metrics), abs=0.2
    )

    texts = [t.encode() for t in make_reviews(6, seed=4)[0]] + BAD_INPUTS
    members = [_server(first), _server(second)]
    expected = np.mean([m.serve(tf.constant(texts))["probability"].numpy() for m in members], axis=0)
    export_dir = main(["export", "--run-dir", str(ensemble_dir)])
    served = main(["predict", "--export-dir", str(export_dir), *[t.decode("utf-8", "surrogateescape") for t in texts[:6]]])
    np.testing.assert_allclose(served, expected[:6], atol=1e-5)
    from_run = main(["predict", "--run-dir", str(ensemble_dir), "--input-file", str(_lines(tmp_path, texts[:6]))])
    np.testing.assert_allclose(from_run, expected[:6], atol=1e-5)

    with pytest.raises(ValueError, match="listed twice"):
        main(["ensemble", "--run-dir", str(tmp_path / "twice"), "--members", str(first), str(first)])
    with pytest.raises(ValueError, match="is itself an ensemble"):
        main(["ensemble", "--run-dir", str(tmp_path / "nested"), "--members", str(ensemble_dir)])
    with pytest.raises(ValueError, match="is an ensemble"):
        main(["train", "--run-dir", str(ensemble_dir)])


def test_write_results_keeps_descriptions_and_recomputes_the_best(tmp_path):
    from apps.sentiment.tasks import write_results

    path = tmp_path / "sentiment.json"
    path.write_text(json.dumps({"dataset": "IMDB, 22,500 + 2,500 + 25,000", "best_test_accuracy": 0.99}))
    config = SentimentConfig(cell="lstm")
    write_results(path, "a", {"test_accuracy": 0.88, "parameters": 10}, config)
    results = write_results(path, "b", {"test_accuracy": 0.905, "cell": "gru+lstm"}, config, "cmd")
    assert results == json.loads(path.read_text())
    assert results["dataset"] == "IMDB, 22,500 + 2,500 + 25,000"  # kept
    assert results["a_cell"] == "lstm" and results["b_cell"] == "gru+lstm"
    assert results["a_command"].startswith("python -m apps.sentiment train --cell lstm")
    assert results["b_command"] == "cmd" and results["a_parameters"] == 10
    assert "CPU cores" in results["b_machine"]
    assert (results["best_test_accuracy"], results["best_run"]) == (0.905, "b")
    assert results["target_met"] is True
    results = write_results(path, "b", {"test_accuracy": 0.85}, config)
    assert (results["best_test_accuracy"], results["best_run"], results["target_met"]) == (0.88, "a", False)


def _lines(folder: Path, texts: list[bytes]) -> Path:
    path = folder / "reviews.txt"
    path.write_bytes(b"\n".join(texts) + b"\n")
    return path


def test_a_review_folder_without_one_class_is_an_error_not_relabelled(tmp_path):
    """Labels follow the folder names (neg 0, pos 1), not the folders present: a test
    folder holding only pos/ must not score its reviews as negatives."""
    (tmp_path / "test" / "pos").mkdir(parents=True)
    (tmp_path / "test" / "pos" / "0_9.txt").write_text("a fine film")
    with pytest.raises(FileNotFoundError, match=r"test/neg: class folder missing"):
        load_split(SentimentConfig(data_dir=str(tmp_path)), "test")
