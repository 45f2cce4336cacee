"""apps/language_model: streams and states, perplexity, n-gram baseline, sampling, export."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.common.config import check_config
from apps.language_model.__main__ import main
from apps.language_model.callbacks import StreamStates
from apps.language_model.config import LanguageModelConfig
from apps.language_model.data import load_texts, split_text
from apps.language_model.evaluation import evaluate_ids
from apps.language_model.generation import TextGenerator
from apps.language_model.model import (
    TokenStepper,
    build_model,
    compile_model,
    copy_weights,
    recurrent_layers,
    reset_states,
    unigram_log_probabilities,
)
from apps.language_model.ngram import NGramModel
from apps.language_model.tokens import TextTokenizer
from layers.decoding import greedy_decode
from pipelines.errors import DataFormatError, DataUnavailableError
from pipelines.streams import stream_arrays, stream_windows

REPO = Path(__file__).resolve().parents[2]
RHYME = "to be, or not to be, that is the question.\nwhether tis nobler in the mind to suffer\n"


def tiny_config(**overrides) -> LanguageModelConfig:
    values = dict(
        units=16,
        num_layers=2,
        bptt=5,
        batch_size=3,
        eval_batch_size=2,
        eval_bptt=7,
        verbose=0,
        epochs=1,
    )
    values.update(overrides)
    return LanguageModelConfig(**values)


# --------------------------------------------------------------------------- states


def _state_values(model):
    return [np.array(v) for layer in recurrent_layers(model) for v in layer.states]


class StateProbe(keras.callbacks.Callback):
    """Records the recurrent states at the start and end of every training batch."""

    def __init__(self):
        super().__init__()
        self.begin, self.end, self.test_begin = [], [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.begin.append(_state_values(self.model))

    def on_train_batch_end(self, batch, logs=None):
        self.end.append(_state_values(self.model))

    def on_test_begin(self, logs=None):
        self.test_begin.append(_state_values(self.model))


def test_state_is_carried_across_windows_reset_per_pass_and_kept_from_validation():
    config = tiny_config()
    ids = np.random.default_rng(0).integers(0, 7, size=3 * 5 * 4 + 1)  # 4 windows a pass
    windows = 4
    model = compile_model(build_model(config, 7, batch_size=3, stateful=True), config)
    probe = StateProbe()
    # 3 epochs of 3 steps over passes of 4 windows: resets fall inside epochs, and the
    # validation after each epoch runs in the middle of a pass.
    model.fit(
        stream_windows(ids, 3, 5).repeat(),
        validation_data=stream_windows(ids, 3, 5),
        epochs=3,
        steps_per_epoch=3,
        callbacks=[StreamStates(windows), probe],
        shuffle=False,
        verbose=0,
    )
    assert len(probe.begin) == 9
    for step, begin in enumerate(probe.begin):
        if step % windows == 0:  # a new pass over the streams starts from zero states
            assert all(np.all(state == 0) for state in begin), step
        else:  # otherwise the state is the one the previous window ended with
            assert all(np.any(state != 0) for state in begin), step
            for carried, previous in zip(begin, probe.end[step - 1]):
                np.testing.assert_array_equal(carried, previous)
    assert all(np.all(state == 0) for states in probe.test_begin for state in states)


def test_whole_split_evaluation_has_no_window_edge_penalty():
    config = tiny_config(num_layers=1, eval_batch_size=1)
    ids = np.random.default_rng(1).integers(0, 9, size=40)
    model = build_model(config, 9)
    model.get_layer("softmax").set_weights(
        [np.random.default_rng(2).normal(size=(16, 9)).astype("float32"), np.zeros(9, "float32")]
    )
    logits = model(ids[None, :-1]).numpy()[0]
    reference = -np.sum(tf.nn.log_softmax(logits).numpy()[np.arange(39), ids[1:]])
    for bptt in (1, 4, 7, 39, 100):
        scores = evaluate_ids(model, config, 9, ids, batch_size=1, bptt=bptt)
        assert scores["num_targets"] == 39
        np.testing.assert_allclose(scores["nats_per_token"] * 39, reference, rtol=1e-5)
    # Several streams still score every token once.
    assert evaluate_ids(model, config, 9, ids, batch_size=4, bptt=3)["num_targets"] == 39


def test_uniform_model_perplexity_equals_the_vocabulary_size():
    vocab_size = 37
    config = tiny_config()
    model = build_model(config, vocab_size)
    softmax = model.get_layer("softmax")
    softmax.set_weights([np.zeros_like(w) for w in softmax.get_weights()])
    ids = np.random.default_rng(3).integers(0, vocab_size, size=500)
    scores = evaluate_ids(model, config, vocab_size, ids, num_chars=1000)
    assert scores["perplexity"] == pytest.approx(vocab_size, rel=1e-5)
    assert scores["bits_per_token"] == pytest.approx(math.log2(vocab_size), rel=1e-5)
    assert scores["bits_per_char"] == pytest.approx(499 * math.log2(vocab_size) / 1000, rel=1e-5)


def test_stateless_and_tied_models_share_weights_with_stateful_copies():
    config = tiny_config(
        tie_embeddings=True,
        embedding_size=8,
        dropout=0.3,
        input_dropout=0.1,
        embedding_dropout=0.1,
        recurrent_dropout=0.2,
        recurrent_weight_dropout=0.2,
        norm_stabilizer=1.0,
        cell="cifg",
    )
    stateless = build_model(config, 11)
    names = {layer.name for layer in stateless.layers}
    assert {"projection", "norm_stabilizer_0", "dropout_1", "input_dropout"} <= names
    assert "softmax" not in names  # tied: the embedding's transpose is the output layer
    bias = np.random.default_rng(10).normal(size=11).astype("float32")
    stateless.get_layer("output_bias").set_weights([bias])
    stateful = copy_weights(stateless, build_model(config, 11, batch_size=2, stateful=True))
    ids = np.random.default_rng(4).integers(0, 11, size=(2, 6))
    np.testing.assert_allclose(stateless(ids).numpy(), stateful(ids).numpy(), atol=1e-5)
    # The one-token stepper reproduces the sequence model.
    stepper = TokenStepper(stateless)
    state = stepper.initial_state(2)
    for t in range(6):
        logits, state = stepper(tf.constant(ids[:, t]), state)
        np.testing.assert_allclose(logits.numpy(), stateless(ids).numpy()[:, t], atol=1e-5)


def test_tied_output_adds_its_own_bias_to_the_transposed_embedding(tmp_path):
    # logits = (h P) E^T + b, as Press & Wolf and AWD-LSTM tie: the bias is not tied.
    config = tiny_config(tie_embeddings=True, embedding_size=8)
    model = build_model(config, 11)
    rng = np.random.default_rng(8)
    embedding = rng.normal(size=(11, 8)).astype("float32")
    bias = rng.normal(size=11).astype("float32")
    model.get_layer("embedding").set_weights([embedding])
    model.get_layer("output_bias").set_weights([bias])
    ids = rng.integers(0, 11, size=(2, 6))
    projected = keras.Model(model.inputs, model.get_layer("projection").output)(ids).numpy()
    np.testing.assert_allclose(model(ids).numpy(), projected @ embedding.T + bias, atol=1e-5)
    # The bias alone sets the distribution of a model whose embedding is zero: with log
    # unigram frequencies, the perplexity is the unigram model's.
    counts = np.array([50, 20, 10, 5, 5, 3, 2, 2, 1, 1, 1], "float64")
    model.get_layer("embedding").set_weights([np.zeros_like(embedding)])
    model.get_layer("output_bias").set_weights([_log_frequencies(counts)])
    split = rng.choice(11, size=300, p=counts / counts.sum())
    unigram = -np.log(counts / counts.sum())[split[1:]].mean()
    scores = evaluate_ids(model, config, 11, split, batch_size=1)
    assert scores["nats_per_token"] == pytest.approx(unigram, rel=1e-5)
    # The bias is a weight of the checkpoint.
    model.save(tmp_path / "tied.keras")
    loaded = keras.saving.load_model(tmp_path / "tied.keras", compile=False)
    np.testing.assert_array_equal(
        loaded.get_layer("output_bias").get_weights()[0], _log_frequencies(counts)
    )


def _log_frequencies(counts: np.ndarray) -> np.ndarray:
    return np.log(counts / counts.sum()).astype("float32")


# --------------------------------------------------------------------------- n-grams


@pytest.mark.parametrize(
    "smoothing,discount", [("kneser_ney", 0.75), ("kneser_ney", 0.0), ("add_k", 0.75)]
)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_ngram_probabilities_sum_to_one_over_the_vocabulary(order, smoothing, discount):
    vocab_size = 13
    ids = np.random.default_rng(order).integers(0, 10, size=400)  # tokens 10..12 never seen
    model = NGramModel(order, vocab_size, smoothing, discount).fit(ids)
    for history in ([], [3], [3, 4], [12, 12, 12], [1, 2, 3], ids[:7].tolist()):
        distribution = model.distribution(history)
        assert distribution.shape == (vocab_size,)
        assert distribution.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(distribution > 0)
        for token in (0, 5, 12):
            assert model.prob(token, history) == pytest.approx(distribution[token], abs=1e-15)


def test_kneser_ney_beats_unigram_and_is_exact_on_a_counted_case():
    text = np.array([0, 1, 2, 0, 1, 2, 0, 1, 3, 0, 1, 2] * 20)
    kn = NGramModel(3, 4, "kneser_ney", 0.75).fit(text)
    unigram = NGramModel(1, 4, "kneser_ney", 0.75).fit(text)
    assert kn.evaluate(text)["perplexity"] < unigram.evaluate(text)["perplexity"]
    # Unigram KN by hand: counts c = (80, 80, 60, 20), total 240, 4 types, D = .75.
    expected = (80 - 0.75) / 240 + 0.75 * 4 / 240 * 0.25
    assert unigram.prob(0) == pytest.approx(expected)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        NGramModel(2, 3).fit([0, 5])
    with pytest.raises(RuntimeError, match="not fitted"):
        NGramModel(2, 3).prob(0)


# --------------------------------------------------------------------------- tokens


@pytest.mark.parametrize("kind", ["char", "word", "sentencepiece"])
def test_tokenizers_round_trip_and_reload(kind, tmp_path):
    text = (RHYME * 5) + "ay, there's the rub\n"
    tokenizer = TextTokenizer.train(kind, text, vocab_size=60 if kind == "sentencepiece" else 0)
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int32 and ids.max() < tokenizer.vocab_size
    assert tokenizer.decode(ids) == text
    assert ids.tolist().count(tokenizer.boundary_id) == text.count("\n")
    tokenizer.save(tmp_path)
    again = TextTokenizer.load(tmp_path)
    np.testing.assert_array_equal(again.encode(text), ids)
    unknown = tokenizer.encode("zq~")  # characters / words never seen in training
    assert len(unknown) >= 1 and tokenizer.unknown_id in unknown.tolist()


def test_word_tokens_follow_mikolovs_ptb_convention():
    tokenizer = TextTokenizer.train("word", " the cat <unk> sat \n the dog \n", vocab_size=0)
    assert tokenizer.tokens[0] == "<unk>"
    ids = tokenizer.encode(" the cat <unk> sat \n the dog \n")
    words = [tokenizer.tokens[i] for i in ids]
    assert words == ["the", "cat", "<unk>", "sat", "<eos>", "the", "dog", "<eos>"]
    assert tokenizer.decode(ids) == "the cat <unk> sat\nthe dog\n"
    assert TextTokenizer.train("word", "a a a b b c\n", vocab_size=3).tokens == [
        "<unk>",
        "a",
        "b",
        "<eos>",
    ]


# --------------------------------------------------------------------------- data and errors


def test_text_splits_and_bad_inputs_give_clear_errors(tmp_path):
    parts = split_text("x" * 100, 0.1, 0.05, "t.txt")
    assert [len(parts[k]) for k in ("train", "valid", "test")] == [85, 10, 5]
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(DataFormatError, match="empty.txt: no text"):
        load_texts(LanguageModelConfig(text_file=str(empty)))
    with pytest.raises(FileNotFoundError, match="missing.txt: no such file"):
        load_texts(LanguageModelConfig(train_file=str(tmp_path / "missing.txt")))
    with pytest.raises(ValueError, match="need --train-file"):
        load_texts(LanguageModelConfig(valid_file="v.txt"))
    # One text, split as in training, and a separate test file.
    whole, test = tmp_path / "whole.txt", tmp_path / "test.txt"
    whole.write_text("y" * 90 + "z" * 10)
    test.write_text("to be tested\n")
    texts = load_texts(LanguageModelConfig(text_file=str(whole), test_file=str(test)))
    assert texts == {"train": "y" * 90, "valid": "z" * 10, "test": "to be tested\n"}
    texts = load_texts(LanguageModelConfig(text_file=str(whole), test_file=str(test), test_fraction=0.2))
    assert texts == {"train": "y" * 70, "valid": "y" * 10, "test": "to be tested\n"}  # as trained
    with pytest.raises(ValueError, match="--tokenizer must be one of"):
        check_config(LanguageModelConfig(tokenizer="bytes"))
    with pytest.raises(ValueError, match="--strategy default"):
        check_config(LanguageModelConfig(strategy="mirrored"))
    short = tmp_path / "short.txt"
    short.write_text(RHYME * 3)
    with pytest.raises(ValueError, match="corpus too short.*lower batch_size or bptt"):
        main(
            [
                "train",
                "--text-file",
                str(short),
                "--run-dir",
                str(tmp_path / "r"),
                "--bptt",
                "50",
                "--batch-size",
                "64",
                "--verbose",
                "0",
            ]
        )


def test_tfds_path_with_mock_data(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    import pipelines.tfds_source

    monkeypatch.setattr(pipelines.tfds_source, "network_available", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=1):
        texts = load_texts(LanguageModelConfig(tfds_data_dir=str(tmp_path / "tfds")))
    assert set(texts) == {"train", "valid", "test"}
    assert all(isinstance(text, str) and text for text in texts.values())


def test_offline_tfds_fails_fast_naming_local_files(offline_tfds, tmp_path):
    with pytest.raises(DataUnavailableError, match="--text-file input.txt"):
        load_texts(LanguageModelConfig(tfds_data_dir=str(tmp_path / "empty")))


def test_training_starts_from_the_unigram_distribution(tmp_path):
    # The output bias starts at the training split's log unigram frequencies: before any
    # update the loss is the unigram cross-entropy, not log(vocabulary). One step: its
    # reported loss is computed before the step's update.
    rng = np.random.default_rng(9)
    words = [f"w{i}" for i in range(30)]
    frequencies = 1.0 / np.arange(1, 31)
    text = "".join(
        " ".join(rng.choice(words, 10, p=frequencies / frequencies.sum())) + "\n"
        for _ in range(100)
    )
    text_file = tmp_path / "text.txt"
    text_file.write_text(text)
    flags = ["--tokenizer", "word", "--units", "16", "--num-layers", "1", "--bptt", "10"]
    flags += ["--batch-size", "4", "--epochs", "1", "--steps-per-epoch", "1"]
    flags += ["--learning-rate", "1e-3", "--tie-embeddings", "true", "--ngram-order", "0"]
    run_dir = tmp_path / "run"
    metrics = main(
        ["train", "--train-file", str(text_file), "--valid-file", str(text_file)]
        + ["--run-dir", str(run_dir), "--verbose", "0", *flags]
    )
    ids = TextTokenizer.load(run_dir / "vocab").encode(text)
    log_probs = unigram_log_probabilities(ids, metrics["vocab_size"])
    np.testing.assert_allclose(
        np.exp(log_probs),
        (np.bincount(ids, minlength=metrics["vocab_size"]) + 1)
        / (len(ids) + metrics["vocab_size"]),
        rtol=1e-5,
    )
    targets = stream_arrays(ids, 4, 10)[1][0]  # the first training window
    unigram = -log_probs[targets].mean()
    assert metrics["history"]["loss"][0] == pytest.approx(unigram, abs=0.02)
    assert unigram < math.log(metrics["vocab_size"]) - 0.3


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A one-layer character LSTM that learns a short rhyme by heart."""
    folder = tmp_path_factory.mktemp("lm")
    text_file = folder / "rhyme.txt"
    text_file.write_text(RHYME * 6)
    run_dir = folder / "run"
    metrics = main(
        [
            "train",
            "--train-file",
            str(text_file),
            "--valid-file",
            str(text_file),
            "--run-dir",
            str(run_dir),
            "--units",
            "64",
            "--num-layers",
            "1",
            "--bptt",
            "16",
            "--batch-size",
            "4",
            "--epochs",
            "25",
            "--learning-rate",
            "0.01",
            "--verbose",
            "0",
            "--lr-schedule",
            "constant",
            "--eval-batch-size",
            "1",
        ]
    )
    return run_dir, metrics


def _generator(run_dir: Path) -> TextGenerator:
    from apps.common.config import load_config
    from apps.common.run_dir import RunDir
    from apps.language_model.tasks import load_generator

    config = load_config(LanguageModelConfig, run_dir / "config.json")
    return load_generator(RunDir(run_dir), config)


@pytest.mark.slow
def test_tiny_model_overfits_a_short_text(trained_run):
    run_dir, metrics = trained_run
    history = metrics["history"]
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert metrics["valid"]["nats_per_token"] < 0.3
    assert metrics["valid"]["nats_per_token"] < metrics["ngram_valid"]["nats_per_token"]
    for name in (
        "config.json",
        "vocab/tokens.txt",
        "checkpoints/best.keras",
        "plots/learning_curves.png",
    ):
        assert (run_dir / name).exists(), name
    evaluated = main(["evaluate", "--run-dir", str(run_dir)])
    assert evaluated["valid"]["nats_per_token"] == pytest.approx(
        metrics["valid"]["nats_per_token"], rel=1e-4
    )


@pytest.mark.slow
def test_sampling_at_temperature_zero_is_greedy(trained_run, capsys):
    run_dir, _ = trained_run
    generator = _generator(run_dir)
    prompt = "to be"
    greedy_text = generator.generate_text(prompt, 60, temperature=0.0)
    assert greedy_text.startswith("to be, or not to be, that is the question.\nwhether")
    ids = generator._prompt_ids(tf.constant(prompt))
    state = generator.stepper.prefill(ids[None, :-1], generator.stepper.initial_state(1))
    reference = greedy_decode(generator.stepper, state, ids[-1:], end_token=-1, max_length=60)
    result = generator.generate(tf.constant([prompt]), tf.constant(60), tf.constant(0.0))
    np.testing.assert_array_equal(result["token_ids"].numpy()[0], reference.sequences[0].numpy())
    for temperature, top_k in ((1e-4, 0), (1.0, 1)):
        assert generator.generate_text(prompt, 60, temperature, top_k) == greedy_text
    streamed = list(generator.stream(prompt, 60, temperature=0.0))
    assert streamed == reference.sequences[0].numpy().tolist()
    # Hot sampling is random but reproducible with a seed, and streams token by token.
    hot = list(generator.stream(prompt, 30, temperature=1.5, seed=3))
    assert hot == list(generator.stream(prompt, 30, temperature=1.5, seed=3))
    main(
        [
            "sample",
            "--run-dir",
            str(run_dir),
            "--prompt",
            "to be",
            "--temperature",
            "0",
            "--num-tokens",
            "40",
        ]
    )
    assert capsys.readouterr().out.startswith("to be, or not to be, that is the question.")


EXPORT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from apps.common.export import load_export
    served = load_export(sys.argv[1])
    greedy = served.signatures["generate"](prompts=["to be"], num_tokens=50, temperature=0.0)
    top1 = served.signatures["generate_top_k"](prompts=["to be"], num_tokens=50, temperature=1.0, top_k=1)
    hot = served.generate(prompts=["whether"], num_tokens=20, temperature=1.0)
    score = served.signatures["score"](texts=["to be, or not to be"])
    print(json.dumps({
        "greedy": greedy["text"].numpy()[0].decode(), "top1": top1["text"].numpy()[0].decode(),
        "ids": greedy["token_ids"].numpy()[0].tolist(), "hot": hot["text"].numpy()[0].decode(),
        "nats": float(score["nats"][0]), "num_tokens": int(score["num_tokens"][0]),
    }))
    """
)


@pytest.mark.slow
def test_export_reloads_in_a_fresh_process_and_generates(trained_run):
    run_dir, _ = trained_run
    path = main(["export", "--run-dir", str(run_dir)])
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run(
        [sys.executable, "-c", EXPORT_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=240,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    served = json.loads(process.stdout.strip().splitlines()[-1])
    generator: TextGenerator = _generator(run_dir)
    in_memory = generator.generate(tf.constant(["to be"]), tf.constant(50), tf.constant(0.0))
    assert served["greedy"] == in_memory["text"].numpy()[0].decode()
    assert served["ids"] == in_memory["token_ids"].numpy()[0].tolist()
    assert served["top1"] == served["greedy"]
    assert served["hot"].startswith("whether") and len(served["hot"]) == len("whether") + 20
    score = generator.score(tf.constant(["to be, or not to be"]))
    assert served["num_tokens"] == int(score["num_tokens"][0]) == len("to be, or not to be")
    assert served["nats"] == pytest.approx(float(score["nats"][0]), rel=1e-5)

    # predict scores texts from the run and from the export alike.
    texts = ["to be, or not to be", "", "zzzz qqq"]
    from_run = main(["predict", "--run-dir", str(run_dir), *texts])
    from_export = main(["predict", "--export-dir", str(path), *texts])
    assert [row["tokens"] for row in from_run] == [len(text) for text in texts]
    for run_row, export_row in zip(from_run, from_export):
        assert export_row["nats"] == pytest.approx(run_row["nats"], rel=1e-5)
    assert from_run[0]["perplexity"] == pytest.approx(math.exp(from_run[0]["nats"] / 19))
    assert from_run[0]["perplexity"] < from_run[2]["perplexity"]  # the rhyme is likelier


@pytest.mark.slow
def test_sentencepiece_model_trains_stateless_with_tied_embeddings(tmp_path):
    text_file = tmp_path / "text.txt"
    rng = np.random.default_rng(5)
    words = ["the", "cat", "dog", "sat", "on", "mat", "ran", "a"]
    text_file.write_text("".join(" ".join(rng.choice(words, 6)) + "\n" for _ in range(300)))
    metrics = main(
        [
            "train",
            "--text-file",
            str(text_file),
            "--run-dir",
            str(tmp_path / "run"),
            "--tokenizer",
            "sentencepiece",
            "--training-mode",
            "stateless",
            "--vocab-size",
            "40",
            "--units",
            "16",
            "--num-layers",
            "1",
            "--bptt",
            "10",
            "--batch-size",
            "8",
            "--epochs",
            "3",
            "--learning-rate",
            "0.01",
            "--verbose",
            "0",
            "--tie-embeddings",
            "true",
            "--embedding-size",
            "8",
            "--ngram-order",
            "2",
        ]
    )
    assert metrics["history"]["loss"][-1] < metrics["history"]["loss"][0]
    assert metrics["valid"]["bits_per_char"] > 0 and metrics["ngram_valid"]["perplexity"] > 1
    text = main(
        [
            "sample",
            "--run-dir",
            str(tmp_path / "run"),
            "--prompt",
            "the cat",
            "--num-tokens",
            "5",
            "--top-k",
            "3",
            "--sample-seed",
            "1",
        ]
    )
    assert isinstance(text, str)


def test_mixed_bfloat16_training_keeps_float32_weights_logits_and_evaluation(tmp_path):
    config = tiny_config(mixed_precision="mixed_bfloat16", tie_embeddings=True, embedding_size=8)
    mixed = compile_model(build_model(config, 11, batch_size=3, stateful=True), config)
    assert keras.config.dtype_policy().name == "float32"  # the process policy is restored
    assert recurrent_layers(mixed)[0].compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in mixed.weights)
    ids = np.random.default_rng(6).integers(0, 11, size=(3, 6))
    assert mixed(ids).dtype == "float32"
    mixed.fit(ids[:, :-1], ids[:, 1:], epochs=2, verbose=0, shuffle=False)
    # Evaluation rebuilds the model in float32 from the same weights: equal to a float32
    # copy, and within bfloat16 rounding of the mixed model.
    full = copy_weights(mixed, build_model(config, 11, 3, True, dtype_policy="float32"))
    assert recurrent_layers(full)[0].compute_dtype == "float32"
    split = np.random.default_rng(7).integers(0, 11, size=40)
    scores = evaluate_ids(mixed, config, 11, split, batch_size=1)
    reset_states(full)
    logits = full.predict(split[None, :-1].repeat(3, 0), verbose=0)[0]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    reference = -log_probs[np.arange(39), split[1:]].mean()
    np.testing.assert_allclose(scores["nats_per_token"], reference, rtol=1e-4)
    reset_states(mixed)
    mixed_logits = mixed.predict(split[None, :-1].repeat(3, 0), batch_size=3, verbose=0)[0]
    np.testing.assert_allclose(mixed_logits, logits, atol=0.1)
    with pytest.raises(ValueError, match="--mixed-precision"):
        check_config(tiny_config(mixed_precision="bf16"))
