"""apps/translation: a tiny model learns a toy translation (word mapping + reversal), BLEU,
attention heatmaps, translate from a file and stdin, SavedModel export reloaded in a fresh
process; batching strategies, losses, scheduled sampling, bad inputs, TFDS paths."""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.common.cli import main_guard
from apps.common.plots import read_history
from apps.translation.__main__ import main
from apps.translation.config import TranslationConfig
from apps.translation.data import (
    Vocabularies,
    build_vocabularies,
    make_batches,
    read_split_examples,
    tokenize_pairs,
)
from apps.translation.inference import Translator, translate_sentences
from apps.translation.model import AttentionSeq2Seq, LabelSmoothedCrossEntropy
from apps.translation.tasks import bleu, load_model
from pipelines.errors import DataFormatError, DataUnavailableError
from pipelines.tokenizers import BOS_ID, EOS_ID, PAD_ID

REPO = Path(__file__).resolve().parents[2]
LEXICON = {
    "cat": "katze", "dog": "hund", "red": "rot", "blue": "blau", "house": "haus",
    "tree": "baum", "big": "gross", "small": "klein", "runs": "rennt", "sees": "sieht",
    "the": "die", "man": "mann",
}  # fmt: skip

TINY = [
    "--vocab-size", "60", "--embedding-size", "32", "--encoder-units", "32",
    "--decoder-units", "48", "--attention-units", "32", "--dropout", "0",
    "--batch-size", "400", "--maximum-features-length", "40", "--maximum-labels-length", "40",
    "--learning-rate", "0.01", "--label-smoothing", "0.1", "--heatmap-sentences", "2",
    "--beam-width", "3", "--maximum-decoding-length", "20", "--verbose", "0",
]  # fmt: skip


def toy_pairs(count: int, seed: int) -> tuple[list[str], list[str]]:
    """English-like word sequences and their 'translation': each word mapped by LEXICON,
    in reverse order (so attention must move right to left)."""
    rng = np.random.default_rng(seed)
    words = list(LEXICON)
    sources, targets = [], []
    for _ in range(count):
        sentence = [str(word) for word in rng.choice(words, int(rng.integers(2, 6)))]
        sources.append(" ".join(sentence))
        targets.append(" ".join(LEXICON[word] for word in reversed(sentence)))
    return sources, targets


def write_pairs(folder: Path, name: str, count: int, seed: int) -> tuple[Path, Path]:
    sources, targets = toy_pairs(count, seed)
    source_path, target_path = folder / f"{name}.en", folder / f"{name}.de"
    source_path.write_text("\n".join(sources) + "\n", encoding="utf-8")
    target_path.write_text("\n".join(targets) + "\n", encoding="utf-8")
    return source_path, target_path


def data_flags(folder: Path) -> list[str]:
    train = write_pairs(folder, "train", 2000, seed=0)
    valid = write_pairs(folder, "valid", 60, seed=1)
    return [
        "--train-source", str(train[0]), "--train-target", str(train[1]),
        "--valid-source", str(valid[0]), "--valid-target", str(valid[1]),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny run trained through the CLI (shared by the tests below)."""
    folder = tmp_path_factory.mktemp("translation")
    run_dir = folder / "run"
    flags = data_flags(folder)
    metrics = main(["train", "--run-dir", str(run_dir), "--epochs", "4", *TINY, *flags])
    return run_dir, flags, metrics


@pytest.mark.slow
def test_tiny_model_learns_toy_translation(trained_run):
    run_dir, _, metrics = trained_run
    history = read_history(run_dir / "history.csv")
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert metrics["epochs_trained"] == 4
    # Mapping words and reversing their order: a learnt model scores far above chance.
    assert metrics["valid_bleu_beam1"] > 40 and metrics["valid_bleu_beam3"] > 40
    assert metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert metrics["valid_sentences_per_s_beam1"] > 0
    assert (run_dir / "checkpoints" / "best.keras").exists()
    assert (run_dir / "vocab" / "source.model").exists()
    assert (run_dir / "plots" / "attention_valid_0.png").stat().st_size > 1000
    hypotheses = (run_dir / "translations" / "valid.beam3.txt").read_text().splitlines()
    assert len(hypotheses) == 60


@pytest.mark.slow
def test_translate_from_file_and_stdin_then_export_reloads_in_fresh_process(
    trained_run, tmp_path, monkeypatch, capsys
):
    run_dir, _, _ = trained_run
    sentences = ["the big dog sees the cat", "red house", "", "tree " * 50, "Très bon 😀"]
    input_path = tmp_path / "input.txt"
    input_path.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    output_path = tmp_path / "output.txt"
    from_file = main(
        ["translate", "--run-dir", str(run_dir), "--input", str(input_path),
         "--output", str(output_path)]
    )  # fmt: skip
    assert output_path.read_text(encoding="utf-8").splitlines() == from_file
    assert len(from_file) == len(sentences)
    assert from_file[1] == "haus rot"  # reversed and mapped

    monkeypatch.setattr(sys, "stdin", io.StringIO("red house\nsmall cat\n"))
    from_stdin = main(["translate", "--run-dir", str(run_dir), "--beam-width", "1"])
    assert capsys.readouterr().out.splitlines() == from_stdin
    assert from_stdin[0] == "haus rot"

    export_path = main(["export", "--run-dir", str(run_dir)])
    script = textwrap.dedent(
        """
        import json, sys
        import tensorflow as tf
        from apps.common.export import load_export
        served = load_export(sys.argv[1])
        sentences = json.loads(sys.argv[2])
        out = served.signatures["serving_default"](sources=tf.constant(sentences))
        print(json.dumps([t.decode("utf-8") for t in out["translations"].numpy()]))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", script, str(export_path), json.dumps(sentences)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served == from_file  # same beam search, same tokenizer, same weights


def tiny_model(**kwargs) -> AttentionSeq2Seq:
    options = dict(
        embedding_size=8, encoder_units=8, decoder_units=12, attention_units=8, dropout=0.0,
        deep_output=True,
    )
    options.update(kwargs)
    model = AttentionSeq2Seq(30, 40, **options)
    model.build()
    return model


def random_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    source = rng.integers(4, 30, (3, 7)).astype("int32")
    source[0, 4:] = PAD_ID
    target = rng.integers(4, 40, (3, 6)).astype("int32")
    target[1, 3:] = PAD_ID
    target_in = np.concatenate([np.full((3, 1), BOS_ID), target[:, :-1]], 1).astype("int32")
    target_in[1, 4:] = PAD_ID
    return {"source": source, "target_in": target_in}, target


@pytest.mark.parametrize(
    "attention,encoder_cell,decoder_cell,deep_output",
    [("bahdanau", "lstm", "gru", True), ("luong_dot", "gru", "gru", False),
     ("luong_general", "cifg", "lstm", True), ("luong_concat", "layer_norm_gru", "mut1", True)],
)  # fmt: skip
def test_any_cell_and_attention_runs_and_round_trips(
    attention, encoder_cell, decoder_cell, deep_output, tmp_path
):
    model = tiny_model(
        attention=attention,
        encoder_cell=encoder_cell,
        decoder_cell=decoder_cell,
        deep_output=deep_output,
        decoder_units=16 if attention == "luong_dot" else 12,  # dot: query size = memory size
    )
    inputs, _ = random_batch()
    logits, alignments = model.teacher_forced(inputs["source"], inputs["target_in"])
    assert tuple(logits.shape) == (3, 6, 40) and tuple(alignments.shape) == (3, 6, 7)
    weights = np.asarray(alignments)
    valid_target = inputs["target_in"] != PAD_ID
    np.testing.assert_allclose(weights[0, :, 4:][valid_target[0]], 0.0)  # padded source
    np.testing.assert_allclose(weights.sum(-1)[valid_target], 1.0, rtol=1e-5)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(restored(inputs), model(inputs), atol=1e-6)


def test_scheduled_sampling_reads_truth_with_probability_one_and_trains():
    model = tiny_model(scheduled_sampling_type="constant", scheduled_sampling_k=1.0)
    inputs, targets = random_batch()
    teacher = np.asarray(model(inputs, training=False))
    sampled = np.asarray(model(inputs, training=True))
    valid = inputs["target_in"] != PAD_ID
    np.testing.assert_allclose(sampled[valid], teacher[valid], atol=1e-5)
    own = np.asarray(model.scheduled_sampling_logits(inputs["source"], inputs["target_in"], 0.0))
    assert np.abs(own[:, 1:] - teacher[:, 1:]).max() > 1e-4  # fed its own predictions
    np.testing.assert_allclose(own[:, 0], teacher[:, 0], atol=1e-5)  # step 0 reads <s>

    decaying = tiny_model(scheduled_sampling_type="inverse_sigmoid", scheduled_sampling_k=2.0)
    decaying.compile(optimizer=keras.optimizers.Adam(0.02), loss=LabelSmoothedCrossEntropy())
    assert float(decaying.read_probability()) == pytest.approx(2 / 3, rel=1e-5)
    weights = (targets != PAD_ID).astype("float32")
    history = decaying.fit(inputs, targets, sample_weight=weights, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert float(decaying.read_probability()) == pytest.approx(2 / (2 + np.exp(2)), rel=1e-4)
    with pytest.raises(ValueError, match="scheduled-sampling-type"):
        tiny_model(scheduled_sampling_type="cosine")


def test_label_smoothed_loss_matches_reference():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    labels = np.array([[1, 2, 0], [4, 0, 0]])
    weights = (labels != 0).astype("float32")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    expected = 0.9 * nll + 0.1 * -log_probs.mean(-1)
    loss = LabelSmoothedCrossEntropy(0.1)(labels, logits, sample_weight=weights)
    assert float(loss) == pytest.approx(float((expected * weights).sum() / weights.sum()), rel=1e-5)
    plain = LabelSmoothedCrossEntropy(0.0)(labels, logits, sample_weight=weights)
    assert float(plain) == pytest.approx(float((nll * weights).sum() / weights.sum()), rel=1e-5)
    with pytest.raises(ValueError, match="label_smoothing"):
        LabelSmoothedCrossEntropy(1.5)


@pytest.fixture(scope="module")
def toy_vocabularies(tmp_path_factory) -> tuple[Vocabularies, list[str], list[str]]:
    sources, targets = toy_pairs(300, seed=5)
    folder = tmp_path_factory.mktemp("vocab")
    config = TranslationConfig(vocab_size=60, vocabulary="separate")
    return build_vocabularies(config, sources, targets, folder), sources, targets


@pytest.mark.parametrize(
    "strategy,batch_type,batch_size",
    [("bucket", "examples", 16), ("bucket", "tokens", 120), ("shuffle", "tokens", 120),
     ("src", "examples", 16), ("tgt", "tokens", 120), ("src_tgt", "tokens", 120),
     ("tgt_src", "examples", 16)],
)  # fmt: skip
def test_batches_hold_every_pair_once(toy_vocabularies, strategy, batch_type, batch_size):
    vocabularies, sources, targets = toy_vocabularies
    assert not vocabularies.joint
    config = TranslationConfig(
        batch_strategy=strategy, batch_type=batch_type, batch_size=batch_size,
        maximum_features_length=40, maximum_labels_length=40,
    )  # fmt: skip
    batches = make_batches(tokenize_pairs(sources, targets, vocabularies), config, training=True)
    gc.collect()  # the pipeline keeps its SentencePiece resources alive by itself
    seen = []
    for inputs, target_out, weights in batches.as_numpy_iterator():
        rows = len(target_out)
        if batch_type == "examples":
            assert rows <= batch_size
        else:
            assert rows * max(inputs["source"].shape[1], target_out.shape[1]) <= batch_size
        np.testing.assert_array_equal(weights, (target_out != PAD_ID).astype("float32"))
        assert np.all(inputs["target_in"][:, 0] == BOS_ID)
        lengths = (target_out != PAD_ID).sum(1)
        assert np.all(target_out[np.arange(rows), lengths - 1] == EOS_ID)
        shifted = np.where(target_out[:, :-1] == EOS_ID, PAD_ID, target_out[:, :-1])
        np.testing.assert_array_equal(inputs["target_in"][:, 1:], shifted)  # <s> y vs y </s>
        seen.extend(tuple(row[row != PAD_ID]) for row in inputs["source"])
    expected = [tuple(ids) for ids in vocabularies.source_tokenizer(dense=False)(tf.constant(sources)).to_list()]
    assert sorted(seen) == sorted(expected)


def test_joint_vocabulary_is_shared(tmp_path):
    sources, targets = toy_pairs(200, seed=2)
    vocabularies = build_vocabularies(TranslationConfig(vocab_size=60), sources, targets, tmp_path)
    assert vocabularies.joint and vocabularies.source_size == vocabularies.target_size
    # A second call (a resumed run) reuses the saved models.
    again = build_vocabularies(TranslationConfig(vocab_size=30), [], [], tmp_path)
    assert again.source == vocabularies.source


def test_translator_greedy_equals_beam_one_and_handles_bad_strings(toy_vocabularies, monkeypatch):
    import apps.translation.inference as inference
    from layers.decoding import DecodeResult, beam_search_decode

    vocabularies, sources, _ = toy_vocabularies
    model = AttentionSeq2Seq(vocabularies.source_size, vocabularies.target_size, 8, encoder_units=8, decoder_units=12)
    model.build()
    bad = ["", "   ", "cat " * 300, "Très bon 😀", sources[0]]
    greedy = Translator(model, vocabularies, beam_width=1, max_length=8, max_source_length=50)
    source_ids = greedy.tokenize(tf.constant([*bad, *sources[:8]]))
    greedy_ids = greedy.translate_ids(source_ids)

    def beam_of_one(step_fn, states, start, end, max_length, padding_token):
        result = beam_search_decode(step_fn, states, start, end, max_length, 1,
                                    length_penalty=0.0, padding_token=padding_token)
        return DecodeResult(result.sequences[:, 0], result.log_probs[:, 0], result.lengths[:, 0])

    # The same translator searching with a beam of one: token for token the greedy path.
    monkeypatch.setattr(inference, "greedy_decode", beam_of_one)
    beam_one = Translator(model, vocabularies, beam_width=1, max_length=8, max_source_length=50)
    beam_ids = beam_one.translate_ids(source_ids)
    np.testing.assert_array_equal(beam_ids["token_ids"].numpy(), greedy_ids["token_ids"].numpy())
    np.testing.assert_allclose(beam_ids["scores"].numpy(), greedy_ids["scores"].numpy(), rtol=1e-5, atol=1e-5)
    monkeypatch.undo()

    translations, _, _ = translate_sentences(greedy, bad, batch_size=2)
    assert len(translations) == len(bad) and all(isinstance(t, str) for t in translations)
    beam = Translator(model, vocabularies, beam_width=4, max_length=8, max_source_length=50)
    beam_out = beam.translate(tf.constant(bad))
    assert beam_out["translations"].shape == (5,) and np.all(np.isfinite(beam_out["scores"]))


def test_bleu_of_identical_and_different_text():
    assert bleu(["a small red house ."], ["a small red house ."])[0] == pytest.approx(100.0)
    assert bleu(["completely other words here"], ["a small red house ."])[0] < 10


def test_bad_inputs_give_clear_errors(tmp_path):
    source, target = write_pairs(tmp_path, "train", 20, seed=0)
    short = tmp_path / "short.de"
    short.write_text("eins\nzwei\n", encoding="utf-8")
    config = TranslationConfig(train_source=str(source), train_target=str(short))
    with pytest.raises(DataFormatError, match="unequal line counts"):
        read_split_examples(config, "train")
    with pytest.raises(ValueError, match="no training data: give --train-source"):
        read_split_examples(TranslationConfig(), "train")
    with pytest.raises(ValueError, match="--valid-source and --valid-target go together"):
        read_split_examples(TranslationConfig(valid_source=str(source)), "valid")
    with pytest.raises(FileNotFoundError, match="missing.en"):
        read_split_examples(TranslationConfig(train_source=str(tmp_path / "missing.en"), train_target=str(target)), "train")
    with pytest.raises(ValueError, match="--attention must be one of"):
        AttentionSeq2Seq(10, 10, attention="luong_magic")
    with pytest.raises(ValueError, match="Unknown cell name"):
        AttentionSeq2Seq(10, 10, encoder_cell="transformer")
    with pytest.raises(ValueError, match="--batch-strategy must be one of"):
        make_batches(tf.data.Dataset.range(1), TranslationConfig(batch_strategy="random"), True)
    run_dir = tmp_path / "not_a_run"
    with pytest.raises(SystemExit):
        main(["evaluate", "--run-dir", str(run_dir)])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        from apps.common.run_dir import RunDir

        load_model(RunDir(tmp_path / "empty_run"))


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
    argv = [
        "train", "--run-dir", str(tmp_path / "r"),
        "--train-source", str(tmp_path / "none.en"), "--train-target", str(tmp_path / "none.de"),
        "--monitor", "loss",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: main(argv))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "none.en: no such file" in error
    assert "Traceback" not in error


def test_tfds_path_with_mock_data(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    import pipelines.tfds_source

    monkeypatch.setattr(pipelines.tfds_source, "network_available", lambda *a, **k: True)

    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices(
            {"pt": ["olá mundo", "bom dia", "obrigado"], "en": ["hello world", "good morning", "thanks"]}
        )

    config = TranslationConfig(
        tfds_name="ted_hrlr_translate/pt_to_en", source_language="pt", target_language="en",
        tfds_data_dir=str(tmp_path), max_train_examples=2,
    )  # fmt: skip
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        assert read_split_examples(config, "train") == (["olá mundo", "bom dia"], ["hello world", "good morning"])
        reverse = TranslationConfig(
            tfds_name="ted_hrlr_translate/pt_to_en", source_language="en", target_language="pt",
            tfds_data_dir=str(tmp_path),
        )  # fmt: skip
        sources, targets = read_split_examples(reverse, "valid")
        assert sources[0] == "hello world" and targets[0] == "olá mundo"
        with pytest.raises(ValueError, match="translates between"):
            read_split_examples(TranslationConfig(tfds_name="ted_hrlr_translate/pt_to_en"), "train")


def test_offline_tfds_fails_fast_naming_local_files(offline_tfds, tmp_path):
    config = TranslationConfig(
        tfds_name="wmt14_translate/de-en", source_language="en", target_language="de",
        tfds_data_dir=str(tmp_path / "empty"),
    )  # fmt: skip
    with pytest.raises(DataUnavailableError, match="--train-source/--train-target"):
        read_split_examples(config, "train")


def test_a_training_set_of_at_most_100_sentences_gets_a_vocabulary(tmp_path):
    """SentencePiece refuses a sample of 1-100 input sentences: a small set is given whole."""
    sources, targets = toy_pairs(40, seed=3)
    vocabularies = build_vocabularies(TranslationConfig(vocab_size=30), sources, targets, tmp_path)
    assert vocabularies.source_size > 4
