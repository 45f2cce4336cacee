"""The tagging app: a tiny BiLSTM-CRF trains on generated CoNLL files (IOB1, as CoNLL-2003
is released) and its loss falls; evaluate, predict and export work; the export reloads in
a fresh process and tags like the in-memory model; bad inputs give clear errors."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from apps.common.plots import read_history
from apps.common.run_dir import RunDir
from apps.tagging.__main__ import main
from apps.tagging.config import TaggingConfig
from apps.tagging.data import (
    CASINGS,
    Featurizer,
    Vocabularies,
    load_splits,
    make_dataset,
    tag_ids,
    training_tags,
)
from apps.tagging.export import TaggerModule
from apps.tagging.metrics import entity_scores, token_accuracy
from apps.tagging.tasks import Scorer, _load_trained, format_conll, parse_variant, tokenize
from pipelines.errors import DataFormatError, DataUnavailableError
from pipelines.tag_schemes import Span, is_valid, spans_to_tags, tags_to_spans

REPO = Path(__file__).resolve().parents[2]

PEOPLE = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank"]
SURNAMES = ["Smith", "Jones", "Brown"]
PLACES = [["Paris"], ["London"], ["Berlin"], ["New", "York"]]
COMPANIES = [["Acme"], ["Globex", "Corp"], ["Initech"]]
TEMPLATES = [
    "PER met PER in LOC .",
    "PER works for ORG in LOC .",
    "ORG hired PER PER yesterday .",  # two adjacent people: IOB1 marks the second with B-
    "the office of ORG is in LOC , said PER .",
    "LOC and LOC are far from LOC .",
]


def make_sentences(count: int, seed: int) -> list[tuple[list[str], list[str], list[str]]]:
    """(tokens, POS tags, IOB1 NER tags) of generated sentences."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        tokens, pos, spans = [], [], []
        for slot in rng.choice(TEMPLATES).split():
            start = len(tokens)
            if slot == "PER":
                words = [rng.choice(PEOPLE)] + ([rng.choice(SURNAMES)] if rng.random() < 0.5 else [])
            elif slot == "LOC":
                words = rng.choice(PLACES)
            elif slot == "ORG":
                words = rng.choice(COMPANIES)
            else:
                tokens.append(slot)
                pos.append("PUNCT" if slot in ".," else "WORD")
                continue
            tokens.extend(words)
            pos.extend(["PROPN"] * len(words))
            spans.append(Span(start, len(tokens), slot))
        sentences.append((tokens, pos, spans_to_tags(spans, len(tokens), "iob1")))
    return sentences


def write_conll(path: Path, sentences) -> Path:
    """CoNLL-2003 layout: token POS chunk NER, -DOCSTART- lines, blank lines between."""
    lines = ["-DOCSTART- -X- O O", ""]
    for tokens, pos, ner in sentences:
        lines += [f"{t} {p} I-NP {n}" for t, p, n in zip(tokens, pos, ner)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_conllu(path: Path, sentences) -> Path:
    lines = []
    for index, (tokens, pos, _) in enumerate(sentences):
        lines.append(f"# sent_id = s{index}")
        lines += [f"{i + 1}\t{t}\t{t.lower()}\t{p}\t_\t_\t0\tdep\t_\t_" for i, (t, p) in enumerate(zip(tokens, pos))]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TINY = [
    "--units", "12", "--char-units", "6", "--char-embedding-size", "8",
    "--word-embedding-size", "12", "--batch-size", "16", "--learning-rate", "0.02",
    "--dropout", "0.1", "--verbose", "0", "--early-stopping-patience", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def ner_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conll")
    return (
        write_conll(folder / "train.txt", make_sentences(96, seed=1)),
        write_conll(folder / "dev.txt", make_sentences(24, seed=2)),
    )


@pytest.fixture(scope="module")
def ner_run(ner_files, tmp_path_factory):
    """A tiny BiLSTM-CRF trained in BIOES on IOB1 files (shared by several tests)."""
    train_file, dev_file = ner_files
    run_dir = tmp_path_factory.mktemp("runs") / "ner"
    metrics = main(
        ["train", "--task", "ner", "--train-file", str(train_file), "--dev-file", str(dev_file),
         "--run-dir", str(run_dir), "--tag-scheme", "bioes", "--epochs", "6", *TINY]
    )  # fmt: skip
    return RunDir(run_dir), metrics


@pytest.mark.slow
def test_bilstm_crf_trains_loss_falls_and_scores_entities(ner_run):
    run_dir, metrics = ner_run
    history = read_history(run_dir.root / "history.csv")
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert "val_f1" in history and len(history["val_f1"]) == 6
    assert metrics["dev_f1"] > 0.5  # far above chance on this easy language
    assert {"dev_unseen_f1", "dev_unseen_gold_entities", "dev_unseen_accuracy"} <= set(metrics)
    assert "val_unseen_f1" in history
    assert set(metrics["dev_per_type"]) <= {"PER", "LOC", "ORG"}
    tags = (run_dir.vocab_dir / "tags.txt").read_text().split()
    assert tags == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-ORG", "I-ORG", "E-ORG", "S-ORG",
                    "B-PER", "I-PER", "E-PER", "S-PER"]  # fmt: skip
    assert (run_dir.checkpoint_dir / "best.keras").exists()
    assert (run_dir.plot_dir / "learning_curves.png").exists()


@pytest.mark.slow
def test_constrained_crf_emits_only_valid_bioes_by_either_decoding(ner_run, ner_files):
    run_dir, _ = ner_run
    config = TaggingConfig(**json.loads(run_dir.config_path.read_text()))
    vocabularies = Vocabularies.load(run_dir.vocab_dir)
    dev = load_splits(config)["dev"]
    model = _load_trained(run_dir)
    predicted = Scorer(dev, Featurizer(vocabularies, config), vocabularies, config).predict(model)
    assert all(is_valid(tags, "bioes") for tags in predicted)
    posterior = dataclasses.replace(config, decoding="posterior")
    by_marginals = Scorer(dev, Featurizer(vocabularies, posterior), vocabularies, posterior).predict(model)
    assert all(is_valid(tags, "bioes") for tags in by_marginals)
    assert [len(tags) for tags in by_marginals] == [len(tags) for tags in predicted]


@pytest.mark.slow
def test_evaluate_predict_and_export_in_a_fresh_process(ner_run, capsys, tmp_path):
    run_dir, metrics = ner_run
    evaluated = main(["evaluate", "--run-dir", str(run_dir.root), "--results-file", str(tmp_path / "r.json")])
    assert evaluated["dev_f1"] == pytest.approx(metrics["dev_f1"])
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["ner_dev_f1"] == pytest.approx(metrics["dev_f1"]) and "ner_dev_command" in results
    assert results["ner_dev_unseen_f1"] == pytest.approx(metrics["dev_unseen_f1"])

    capsys.readouterr()
    tags = main(["predict", "--run-dir", str(run_dir.root), "--text", "Alice Smith met Bob in New York.",
                 "--output-scheme", "bio"])  # fmt: skip
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("Alice\t") and printed.endswith("\n\n")
    assert len(printed.strip().splitlines()) == 8 and len(tags[0]) == 8
    assert is_valid(tags[0], "bio")

    export_path = main(["export", "--run-dir", str(run_dir.root)])
    sentences = [["Carol", "works", "for", "Globex", "Corp", "in", "Paris", "."], ["Erin", "met", "Zoe"], ["."]]
    config = TaggingConfig(**json.loads(run_dir.config_path.read_text()))
    vocabularies = Vocabularies.load(run_dir.vocab_dir)
    in_memory = TaggerModule(Featurizer(vocabularies, config), _load_trained(run_dir), vocabularies.tags)
    expected = [[t.decode() for t in row] for row in in_memory.tag(tf.ragged.constant(sentences))["tags"].to_list()]
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        from apps.common.export import load_export
        served = load_export({str(export_path)!r})
        sentences = {sentences!r}
        ragged = [[t.decode() for t in row] for row in served.tag(tf.ragged.constant(sentences))["tags"].to_list()]
        width = max(len(s) for s in sentences)
        padded = tf.constant([s + [""] * (width - len(s)) for s in sentences])
        out = served.signatures["serving_default"](tokens=padded)
        dense = [[t.decode() for t in row[:n]] for row, n in zip(out["tags"].numpy(), out["lengths"].numpy())]
        flat = served.signatures["tag_flat"](
            token_values=tf.constant([t for s in sentences for t in s]),
            row_lengths=tf.constant([len(s) for s in sentences], tf.int64))["tag_values"].numpy()
        empty = served.signatures["serving_default"](tokens=tf.zeros([2, 0], tf.string))["tags"].shape
        odd = served.tag(tf.ragged.constant([[b"caf\\xc3\\xa9", b"\\xff\\xfe", b"x" * 10000, b""], []]))
        print(json.dumps({{"ragged": ragged, "dense": dense, "flat": [t.decode() for t in flat],
                          "empty": list(empty), "odd": [len(row) for row in odd["tags"].to_list()]}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["ragged"] == expected
    assert served["dense"] == expected
    assert served["flat"] == [t for row in expected for t in row]
    assert served["empty"] == [2, 0]
    assert served["odd"] == [4, 0]  # invalid UTF-8, a huge token, an empty token, no token


@pytest.mark.slow
def test_evaluate_reads_only_the_split_it_scores(ner_run, ner_files, tmp_path):
    """The training file may be gone: evaluate reads the dev (or test) file alone."""
    run_dir, metrics = ner_run
    gone = str(tmp_path / "moved_away.txt")
    evaluated = main(["evaluate", "--run-dir", str(run_dir.root), "--train-file", gone])
    assert evaluated["dev_f1"] == pytest.approx(metrics["dev_f1"])
    tested = main(["evaluate", "--run-dir", str(run_dir.root), "--train-file", gone, "--split", "test",
                   "--test-file", str(ner_files[1])])  # fmt: skip
    assert tested["test_f1"] == pytest.approx(metrics["dev_f1"])  # the dev file as test file
    with pytest.raises(FileNotFoundError, match="moved_away.txt: no such file"):
        main(["evaluate", "--run-dir", str(run_dir.root), "--train-file", gone, "--dev-file", ""])


def test_a_dev_or_test_split_is_read_without_the_training_file(ner_files, tmp_path):
    from apps.tagging.data import load_split

    config = TaggingConfig(train_file=str(tmp_path / "moved.txt"), dev_file=str(ner_files[1]), test_file=str(ner_files[1]))
    dev = load_split(config, "dev")
    assert len(dev) == 24 and dev.scheme == "iob1"
    assert load_split(config, "test").tokens == dev.tokens
    with pytest.raises(FileNotFoundError, match="moved.txt: no such file"):
        load_split(dataclasses.replace(config, dev_file=""), "dev")  # carved from the training file


@pytest.mark.slow
def test_softmax_pos_tagger_on_conllu_with_cnn_characters(tmp_path):
    sentences = make_sentences(60, seed=3)
    train_file = write_conllu(tmp_path / "train.conllu", sentences)
    run_dir = tmp_path / "pos"
    metrics = main(
        ["train", "--task", "pos", "--train-file", str(train_file), "--valid-fraction", "0.25",
         "--decoder", "softmax", "--char-encoder", "cnn", "--cell", "gru", "--epochs", "3",
         "--run-dir", str(run_dir), *TINY]
    )  # fmt: skip
    history = read_history(run_dir / "history.csv")
    assert history["loss"][-1] < history["loss"][0]
    assert metrics["dev_accuracy"] > 0.6
    assert "dev_f1" not in metrics
    assert json.loads((run_dir / "config.json").read_text())["monitor"] == "val_accuracy"


def test_data_pipeline_conversions_and_no_sentence_lost(ner_files, tmp_path):
    train_file, dev_file = ner_files
    config = TaggingConfig(train_file=str(train_file), dev_file=str(dev_file), tag_scheme="bio", batch_size=7)
    splits = load_splits(config)
    assert splits["train"].scheme == "iob1" and len(splits["train"]) == 96
    converted = training_tags(splits["train"], config)
    for original, bio in zip(splits["train"].tags, converted):
        assert tags_to_spans(original, "iob1") == tags_to_spans(bio, "bio")
        assert is_valid(bio, "bio")
    assert any("B-PER" in tags for tags in splits["train"].tags)  # IOB1 B- for adjacent people
    vocabularies = Vocabularies(["alice", "met"], ["A", "l"], ["O", "B-PER", "I-PER"])
    featurizer = Featurizer(vocabularies, config)
    features = featurizer.batch(tf.ragged.constant([["Alice", "MET", "2024"], ["x"]]))
    np.testing.assert_array_equal(features["word_ids"].numpy(), [[2, 3, 1], [1, 0, 0]])
    casings = [[CASINGS.index(c) + 1 for c in ("initial_upper", "all_upper", "numeric")], [4, 0, 0]]
    np.testing.assert_array_equal(features["case_ids"].numpy(), casings)
    assert features["char_ids"].shape[:2] == (2, 3)
    np.testing.assert_array_equal(features["char_ids"][0, 0, :2].numpy(), [2, 3])  # A, l
    sentences = [["Alice", "met"]] * 3 + [["a", "b", "c", "d", "e", "f"]] * 4
    ids = tag_ids([["B-PER"] + ["O"] * (len(s) - 1) for s in sentences], vocabularies.tags, "test")
    dataset = make_dataset(sentences, ids, featurizer, config, training=True)
    lengths = sorted(int(n) for x, _ in dataset for n in tf.reduce_sum(tf.sign(x["char_ids"][..., 0]), 1))
    assert lengths == [2, 2, 2, 6, 6, 6, 6] and dataset.cardinality().numpy() == 2


def test_entity_scores_use_original_spans():
    gold_iob1 = [["I-PER", "B-PER", "O", "I-LOC"]]  # two adjacent people
    perfect_bioes = [["S-PER", "S-PER", "O", "S-LOC"]]
    scores = entity_scores(gold_iob1, "iob1", perfect_bioes, "bioes")
    assert scores["f1"] == 1.0 and scores["gold_entities"] == 3
    # A model trained in IO cannot split the two people: scored against the original spans.
    io = entity_scores(gold_iob1, "iob1", [["I-PER", "I-PER", "O", "I-LOC"]], "io")
    assert io["precision"] == pytest.approx(0.5) and io["recall"] == pytest.approx(1 / 3)
    assert io["per_type"]["LOC"]["f1"] == 1.0 and io["per_type"]["PER"]["f1"] == 0.0
    # Invalid predicted sequences are decoded leniently, like conlleval.
    lenient = entity_scores([["B-PER", "I-PER", "O"]], "bio", [["I-PER", "I-PER", "O"]], "bio")
    assert lenient["f1"] == 1.0
    assert token_accuracy([["A", "B"], ["C"]], [["A", "X"], ["C"]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        token_accuracy([["A", "B"]], [["A"]])


def test_tokenizer_and_conll_output():
    assert tokenize("Mr. Smith's U.S. firm didn't pay $1,000.50 (today).") == [
        "Mr", ".", "Smith", "'s", "U.S.", "firm", "did", "n't", "pay", "$", "1,000.50", "(",
        "today", ")", ".",
    ]  # fmt: skip
    assert format_conll([["a", "b"], ["c"]], [["O", "B-X"], ["O"]]) == "a\tO\nb\tB-X\n\nc\tO\n\n"
    name, config = parse_variant("gru-softmax=cell:gru,decoder:softmax,crf_constraints:false", TaggingConfig())
    assert (name, config.cell, config.decoder, config.crf_constraints) == ("gru-softmax", "gru", "softmax", False)


def test_bad_inputs_are_clear_errors(tmp_path, ner_files, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("EU NNP I-NP I-ORG\nrejects VBZ I-VP\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad.txt:2: expected 4 columns"):
        main(["train", "--train-file", str(bad), "--run-dir", str(tmp_path / "r1")])
    with pytest.raises(ValueError, match="--decoder must be one of crf, softmax"):
        main(["train", "--train-file", str(ner_files[0]), "--decoder", "hmm", "--run-dir", str(tmp_path / "r2")])
    with pytest.raises(ValueError, match="--tag-scheme must be one of bio"):
        main(["train", "--train-file", str(ner_files[0]), "--tag-scheme", "iob1", "--run-dir", str(tmp_path / "r3")])
    with pytest.raises(ValueError, match="--tag-scheme must be one of bio, iob2, bioes, iobes, io; got 'bilo'"):
        main(["train", "--train-file", str(ner_files[0]), "--tag-scheme", "bilo", "--run-dir", str(tmp_path / "r4")])
    with pytest.raises(DataFormatError, match="no 'upos' column"):
        main(["train", "--task", "pos", "--train-file", str(ner_files[0]), "--columns", "tokens,a,b,c",
              "--run-dir", str(tmp_path / "r5")])  # fmt: skip
    with pytest.raises(SystemExit):
        main(["evaluate", "--run-dir", str(tmp_path / "not_a_run")])
    assert "is not a run directory" in capsys.readouterr().err
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("EU NNP I-NP B-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-NP X-FOO\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"unknown.txt:4: invalid entity tag 'X-FOO'"):
        main(["train", "--train-file", str(unknown), "--run-dir", str(tmp_path / "r6")])
    with pytest.raises(DataFormatError, match=r"unknown.txt:4: invalid entity tag 'X-FOO'"):
        main(["train", "--train-file", str(ner_files[0]), "--dev-file", str(unknown), "--run-dir", str(tmp_path / "r7")])
    invalid = tmp_path / "invalid.txt"
    invalid.write_bytes(b"Peter lives in Paris .\nZ\xc3\xbcrich is \xff far .\n")
    with pytest.raises(DataFormatError, match=r"invalid.txt:2: invalid UTF-8"):
        main(["predict", "--input-file", str(invalid), "--export-dir", str(tmp_path)])


def _mock_conll2003(self, split, *args, **kwargs):
    """Aligned tokens and tags (TFDS's own mock draws each sequence's length separately)."""
    names = self.info.features["ner"].feature.names

    def generate():
        for tokens, _, ner in make_sentences(10, seed=5):
            bio = spans_to_tags(tags_to_spans(ner, "iob1"), len(tokens), "bio")
            ids = [names.index(tag) for tag in bio]
            yield {"tokens": tokens, "pos": [0] * len(tokens), "chunks": [0] * len(tokens), "ner": ids}

    spec = tf.TensorSpec([None], tf.int64)
    return tf.data.Dataset.from_generator(
        generate,
        output_signature={"tokens": tf.TensorSpec([None], tf.string), "pos": spec, "chunks": spec, "ner": spec},
    )


def test_tfds_source_with_mock_data(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    import pipelines.tfds_source

    monkeypatch.setattr(pipelines.tfds_source, "network_available", lambda *a, **k: True)
    config = TaggingConfig(task="ner", tfds_data_dir=str(tmp_path / "tfds"))
    with tfds.testing.mock_data(as_dataset_fn=_mock_conll2003):
        splits = load_splits(config)
    assert len(splits["train"]) == 10 and splits["train"].scheme == "bio"
    assert splits["train"].tokens[0] == make_sentences(1, seed=5)[0][0]


def test_offline_tfds_fails_fast_naming_local_files(offline_tfds, tmp_path):
    with pytest.raises(DataUnavailableError, match="--train-file"):
        main(["train", "--task", "pos", "--tfds-data-dir", str(tmp_path / "empty"), "--run-dir", str(tmp_path / "r")])


@pytest.mark.parametrize("encoder", ["lstm", "cnn"])
def test_character_encoder_reads_each_distinct_word_once_with_the_same_result(encoder):
    """Repeated words are read once per batch: features and gradients equal reading every
    word on its own; padding words get zeros."""
    from apps.tagging.model import CharacterEncoder

    layer = CharacterEncoder(9, embedding_size=4, encoder=encoder, units=3)
    rng = np.random.default_rng(7)
    words = [[1, 2, 3, 0], [4, 5, 0, 0], [1, 2, 3, 0], [6, 7, 8, 1]]
    batch = np.array([[words[0], words[1], words[2]], [words[3], words[0], [0, 0, 0, 0]]], np.int32)
    layer.build(batch.shape)
    for variable in layer.trainable_variables:
        variable.assign(rng.normal(size=variable.shape).astype("float32"))
    weights = tf.constant(rng.normal(size=(2, 3, layer.output_size)).astype("float32"))

    with tf.GradientTape() as tape:
        features = tf.function(layer)(tf.constant(batch))
        loss = tf.reduce_sum(features * weights)
    gradients = tape.gradient(loss, layer.trainable_variables)

    with tf.GradientTape() as tape:
        one_by_one = [
            [
                layer(tf.constant(batch[b, w][None, None]))[0, 0]
                if batch[b, w].any()
                else tf.zeros(layer.output_size)
                for w in range(3)
            ]
            for b in range(2)
        ]
        reference = tf.stack([tf.stack(row) for row in one_by_one])
        reference_loss = tf.reduce_sum(reference * weights)
    reference_gradients = tape.gradient(reference_loss, layer.trainable_variables)

    np.testing.assert_allclose(features[0, 0], features[0, 2])
    np.testing.assert_array_equal(features[1, 2], np.zeros(layer.output_size))
    np.testing.assert_allclose(features, reference, atol=1e-6)
    np.testing.assert_allclose(loss, reference_loss, rtol=1e-5)
    for a, b in zip(gradients, reference_gradients):
        np.testing.assert_allclose(tf.convert_to_tensor(a), tf.convert_to_tensor(b), rtol=1e-4, atol=1e-5)


def test_padding_is_masked_whatever_the_word_features():
    """Keras 3's Concatenate ORs masks: the backbone must re-mask padding words, so a
    sentence's potentials do not depend on how far it is padded."""
    from apps.tagging.model import build_backbone

    config = TaggingConfig(task="pos", units=4, char_units=3, word_embedding_size=5, dropout=0.0)
    vocabularies = Vocabularies(["the", "cat", "sat"], list("thecas"), ["DET", "NOUN", "VERB"])
    backbone = build_backbone(config, vocabularies)
    featurizer = Featurizer(vocabularies, config)
    alone = backbone(featurizer.batch(tf.ragged.constant([["the", "cat"]])), training=False)
    padded = backbone(featurizer.batch(tf.ragged.constant([["the", "cat"], ["the", "cat", "sat", "sat"]])))
    np.testing.assert_allclose(padded[0, :2].numpy(), alone[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(padded._keras_mask.numpy(), [[1, 1, 0, 0], [1, 1, 1, 1]])


@pytest.mark.slow
def test_ensemble_of_runs_evaluates_predicts_and_exports(ner_run, ner_files, tmp_path, capsys):
    """An ensemble run (a CRF and a softmax member): evaluate scores it and each member as
    the member scores itself; predict and the reloaded export tag like the in-memory pool."""
    from apps.tagging.ensemble import EnsembleTaggerModule
    from apps.tagging.tasks import make_module

    first, first_metrics = ner_run
    train_file, dev_file = ner_files
    second = tmp_path / "softmax"
    second_metrics = main(
        ["train", "--task", "ner", "--train-file", str(train_file), "--dev-file", str(dev_file),
         "--run-dir", str(second), "--decoder", "softmax", "--seed", "7", "--epochs", "4", *TINY]
    )  # fmt: skip
    ensemble_dir = tmp_path / "ensemble"
    main(["ensemble", "--run-dir", str(ensemble_dir), "--members", str(first.root), str(second)])
    results = tmp_path / "r.json"
    metrics = main(["evaluate", "--run-dir", str(ensemble_dir), "--results-file", str(results)])
    assert metrics["member_dev_f1"] == pytest.approx([first_metrics["dev_f1"], second_metrics["dev_f1"]])
    assert metrics["dev_f1"] > 0.5
    figures = json.loads(results.read_text())
    assert figures["ner_dev_ensemble_f1"] == metrics["dev_f1"] and figures["ner_dev_ensemble_members"] == 2
    assert figures["ner_dev_ensemble_command"].startswith("python -m apps.tagging ensemble --members ")
    assert "--decoder softmax" in figures["ner_dev_ensemble_member_commands"][1]
    expected_time = first_metrics["train_wall_time_s"] + second_metrics["train_wall_time_s"]
    assert figures["ner_dev_ensemble_train_wall_time_s"] == pytest.approx(expected_time, abs=0.2)
    posterior = main(["evaluate", "--run-dir", str(ensemble_dir), "--decoding", "posterior"])
    assert posterior["dev_f1"] > 0.5 and len(posterior["member_dev_f1"]) == 2

    module = make_module(RunDir(ensemble_dir), TaggingConfig(**json.loads((ensemble_dir / "config.json").read_text())))
    assert isinstance(module, EnsembleTaggerModule) and len(module.members) == 2
    sentences = [["Carol", "works", "for", "Globex", "Corp", "in", "Paris", "."], ["Erin", "met", "Zoe"]]
    expected = [[t.decode() for t in row] for row in module.tag(tf.ragged.constant(sentences))["tags"].to_list()]
    capsys.readouterr()
    tags = main(["predict", "--run-dir", str(ensemble_dir), "--pretokenized",
                 "--text", " ".join(sentences[0]), "--text", " ".join(sentences[1])])  # fmt: skip
    assert tags == expected
    export_path = main(["export", "--run-dir", str(ensemble_dir)])
    served = tf.saved_model.load(str(export_path))
    flat = served.signatures["tag_flat"](
        token_values=tf.constant([t for s in sentences for t in s]),
        row_lengths=tf.constant([len(s) for s in sentences], tf.int64),
    )["tag_values"].numpy()
    assert [t.decode() for t in flat] == [t for row in expected for t in row]

    with pytest.raises(ValueError, match="is an ensemble"):
        main(["train", "--run-dir", str(ensemble_dir), *TINY])
