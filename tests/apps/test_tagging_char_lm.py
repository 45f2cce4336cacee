"""apps/tagging/char_lm: contextual string features from forward and backward character
language models (Akbik et al. 2018): sentence layout by hand, features equal to each
sentence read alone (padding changes nothing), LMs that learn, and a tagger that trains,
evaluates and exports with them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from apps.common.export import load_export
from apps.common.run_dir import RunDir
from apps.tagging.__main__ import main
from apps.tagging.char_lm import (
    ContextualStrings,
    build_language_model,
    sentence_char_ids,
    state_model,
    train_language_models,
)
from apps.tagging.config import TaggingConfig
from apps.tagging.data import Featurizer, Vocabularies
from apps.tagging.tasks import _featurizer, _load_trained, make_module
from tests.apps.test_tagging import TINY, make_sentences, write_conll


def test_sentence_layout_counted_by_hand():
    char_ids = tf.ragged.constant([[[2, 3], [4]], [[5]], [[6, 7, 8], [], [2]]], dtype=tf.int32)
    ids, after, before = sentence_char_ids(char_ids, separator=9)
    assert ids.to_list() == [[9, 2, 3, 9, 4, 9], [9, 5, 9], [9, 6, 7, 8, 9, 9, 2, 9]]
    assert after.to_list() == [[3, 5], [2], [4, 5, 7]]
    assert before.to_list() == [[0, 3], [0], [0, 4, 5]]


def test_features_are_the_states_at_word_boundaries_whatever_the_padding():
    tf.random.set_seed(0)
    forward, backward = (build_language_model(10, 4, 3, name) for name in ("forward", "backward"))
    encoder = ContextualStrings(forward, backward, separator=9)
    words = [[[2, 3], [4]], [[5]], [[6, 7, 8], [3], [2]]]
    batch = encoder(tf.ragged.constant(words, dtype=tf.int32)).numpy()
    assert batch.shape == (3, 3, 6)
    forward_states, backward_states = state_model(forward), state_model(backward)
    for index, sentence in enumerate(words):
        alone = [9] + [c for word in sentence for c in [*word, 9]]
        f = forward_states(np.array([alone]), training=False).numpy()[0]
        b = backward_states(np.array([alone[::-1]]), training=False).numpy()[0][::-1]
        position = 0
        for word_index, word in enumerate(sentence):
            before, position = position, position + len(word) + 1
            np.testing.assert_allclose(batch[index, word_index, :3], f[position], atol=1e-5)
            np.testing.assert_allclose(batch[index, word_index, 3:], b[before], atol=1e-5)
        assert not batch[index, len(sentence) :].any()  # padding words: zeros


@pytest.mark.slow
def test_language_models_learn_the_training_sentences(tmp_path):
    sentences = [tokens for tokens, _, _ in make_sentences(96, seed=1)]
    dev = [tokens for tokens, _, _ in make_sentences(24, seed=2)]
    chars = sorted({c for sentence in sentences for token in sentence for c in token})
    config = TaggingConfig(char_lm_units=32, char_lm_embedding_size=8, char_lm_epochs=25, verbose=0)
    featurizer = Featurizer(Vocabularies(["x"], chars, ["O"]), config)
    stats = train_language_models(sentences, dev, featurizer, config, tmp_path / "lm")
    # Well below the uniform log2 |V| bits per character after 75 small steps.
    uniform = np.log2(len(chars) + 3)
    for direction in ("forward", "backward"):
        assert stats[f"char_lm_{direction}_epochs"] == 25
        assert stats[f"char_lm_{direction}_dev_bpc"] < uniform - 0.8
    assert json.loads((tmp_path / "lm" / "char_lm.json").read_text()) == stats


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conll_lm")
    return write_conll(folder / "train.txt", make_sentences(96, seed=1)), write_conll(
        folder / "dev.txt", make_sentences(24, seed=2)
    )


@pytest.mark.slow
def test_tagger_with_character_language_models_trains_evaluates_and_exports(files, tmp_path):
    train_file, dev_file = files
    run_dir = tmp_path / "ner_lm"
    options = ["--task", "ner", "--train-file", str(train_file), "--dev-file", str(dev_file),
               "--run-dir", str(run_dir), "--epochs", "3", "--char-lm-units", "8",
               "--char-lm-embedding-size", "6", "--char-lm-epochs", "1", *TINY]  # fmt: skip
    metrics = main(["train", *options])
    assert metrics["dev_f1"] > 0.3
    assert metrics["char_lm_forward_epochs"] == metrics["char_lm_backward_epochs"] == 1
    assert metrics["train_wall_time_s"] >= metrics["char_lm_wall_time_s"] > 0
    assert (run_dir / "char_lm" / "forward.keras").exists()

    # Resuming reuses the LMs: their statistics come back unchanged.
    stamp = (run_dir / "char_lm" / "forward.keras").stat().st_mtime_ns
    again = main(["train", *options[:-len(TINY)], "--epochs", "4", *TINY])
    assert (run_dir / "char_lm" / "forward.keras").stat().st_mtime_ns == stamp
    assert again["char_lm_forward_dev_bpc"] == metrics["char_lm_forward_dev_bpc"]

    evaluated = main(["evaluate", "--run-dir", str(run_dir)])
    assert evaluated["dev_f1"] == pytest.approx(again["dev_f1"])

    # The export runs the LMs in the graph and tags as the in-memory run does.
    export_path = main(["export", "--run-dir", str(run_dir)])
    sentences = [["Carol", "works", "for", "Globex", "Corp", "in", "Paris", "."], ["Erin", "met", "Zoe"]]
    ragged = tf.ragged.constant(sentences)
    expected = make_module(RunDir(run_dir), TaggingConfig(**json.loads((run_dir / "config.json").read_text())))
    served = load_export(export_path)
    assert served.tag(ragged)["tags"].to_list() == expected.tag(ragged)["tags"].to_list()

    # Cached training features equal the in-graph ones of the export path.
    config = TaggingConfig(**json.loads((run_dir / "config.json").read_text()))
    vocabularies = Vocabularies.load(RunDir(run_dir).vocab_dir)
    featurizer = _featurizer(RunDir(run_dir), vocabularies, config)
    cached = featurizer.context_features(sentences)
    in_graph = featurizer.batch(ragged)["context"].numpy()
    for index, sentence in enumerate(sentences):
        np.testing.assert_allclose(cached[index], in_graph[index, : len(sentence)], atol=1e-5)
    assert _load_trained(RunDir(run_dir)).get_layer("backbone").get_layer("context") is not None
    assert isinstance(Featurizer(vocabularies, config).context, type(None))
