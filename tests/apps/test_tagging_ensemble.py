"""Tagger ensembles (apps/tagging/ensemble.py): the log-linear pool decodes the path that
maximises the members' summed log-probabilities, or with posterior decoding the tags of
highest pooled marginal probability (brute force over every path of tiny untrained
taggers, CRF and softmax mixed, with start/end transitions); members must share the tag
set."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.tagging.config import TaggingConfig
from apps.tagging.data import Featurizer, Vocabularies
from apps.tagging.ensemble import EnsembleTaggerModule, tag_sentences
from apps.tagging.export import TaggerModule
from apps.tagging.model import build_model

WORDS = ["the", "cat", "sat", "on", "mat"]
CHARS = list("thecasonm")
TAGS = ["DET", "NOUN", "VERB", "ADP"]
SMALL = dict(task="pos", units=4, char_units=3, char_embedding_size=4, word_embedding_size=5, dropout=0.0)


def _member(seed: int, tags=TAGS, **options) -> TaggerModule:
    keras.utils.set_random_seed(seed)
    config = TaggingConfig(**{**SMALL, **options})
    vocabularies = Vocabularies(WORDS, CHARS, list(tags))
    model = build_model(config, vocabularies)
    if config.decoder == "crf":  # boundary scores start at zero: make them matter
        rng = np.random.default_rng(seed)
        model.crf.start_transitions.assign(rng.normal(size=len(tags)).astype("float32"))
        model.crf.end_transitions.assign(rng.normal(size=len(tags)).astype("float32"))
        model.crf.transitions.assign(3 * rng.normal(size=(len(tags), len(tags))).astype("float32"))
    return TaggerModule(Featurizer(vocabularies, config), model, list(tags), config.decoding)


def _path_log_probabilities(member: TaggerModule, tokens: tf.RaggedTensor, paths: list) -> np.ndarray:
    """log p(path | sentence) of one member for every path, from its own model outputs."""
    outputs = member.model(member.featurizer.batch(tokens), training=False)
    tags = tf.constant(paths, tf.int32)
    if isinstance(outputs, dict):
        potentials = tf.repeat(outputs["potentials"], len(paths), axis=0)
        return member.model.crf.log_likelihood(potentials, tags).numpy()
    log_probabilities = tf.nn.log_softmax(outputs[0], axis=-1).numpy()
    return np.array([sum(log_probabilities[t, tag] for t, tag in enumerate(path)) for path in paths])


def test_pool_decodes_the_brute_force_best_path_of_summed_log_probabilities():
    members = [_member(1), _member(2, decoder="softmax", cell="gru"), _member(3, char_encoder="cnn")]
    ensemble = EnsembleTaggerModule(members)
    disagreements = 0
    for sentence in (["the", "cat", "sat"], ["a", "cat", "on", "mat"], ["sat"]):
        tokens = tf.ragged.constant([sentence])
        paths = list(itertools.product(range(len(TAGS)), repeat=len(sentence)))
        totals = sum(_path_log_probabilities(member, tokens, paths) for member in members)
        best = paths[int(np.argmax(totals))]
        decoded = ensemble.tag(tokens)["tags"].to_list()[0]
        assert [TAGS.index(t.decode()) for t in decoded] == list(best)
        alone = {tuple(t.decode() for t in m.tag(tokens)["tags"].to_list()[0]) for m in members}
        disagreements += len(alone) > 1
    # The members disagree somewhere, or the test would not tell pooling from voting.
    assert disagreements > 0


def _brute_force_marginals(log_probabilities: np.ndarray, paths: list, length: int) -> np.ndarray:
    weights = np.exp(log_probabilities - log_probabilities.max())
    weights /= weights.sum()
    marginals = np.zeros((length, len(TAGS)))
    for path, weight in zip(paths, weights):
        marginals[np.arange(length), path] += weight
    return marginals


def test_posterior_decoding_picks_the_tags_of_highest_pooled_marginal_probability():
    members = [_member(1), _member(2, decoder="softmax", cell="gru"), _member(3, char_encoder="cnn")]
    single = _member(1, decoding="posterior")
    ensemble = EnsembleTaggerModule(members, decoding="posterior")
    differs_from_viterbi = 0
    for sentence in (["the", "cat", "sat"], ["a", "cat", "on", "mat"], ["sat", "the"]):
        tokens = tf.ragged.constant([sentence])
        paths = list(itertools.product(range(len(TAGS)), repeat=len(sentence)))
        mean = sum(_path_log_probabilities(member, tokens, paths) for member in members) / len(members)
        expected = _brute_force_marginals(mean, paths, len(sentence)).argmax(-1)
        decoded = [TAGS.index(t.decode()) for t in ensemble.tag(tokens)["tags"].to_list()[0]]
        assert decoded == expected.tolist()
        differs_from_viterbi += decoded != list(paths[int(np.argmax(mean))])
        # One CRF tagger alone: the argmax of its own marginals.
        own = _brute_force_marginals(_path_log_probabilities(single, tokens, paths), paths, len(sentence))
        assert [TAGS.index(t.decode()) for t in single.tag(tokens)["tags"].to_list()[0]] == own.argmax(-1).tolist()
    assert differs_from_viterbi > 0  # otherwise the test would not tell the rules apart


def test_single_member_ensemble_tags_like_the_member_and_batches_keep_order():
    member = _member(4)
    sentences = [["the", "cat", "sat", "on", "the", "mat"], ["cat"], ["the", "mat"], ["sat", "on"]]
    alone = tag_sentences(member, sentences, batch_size=2)
    assert tag_sentences(EnsembleTaggerModule([member]), sentences, batch_size=3) == alone
    assert [len(tags) for tags in alone] == [len(s) for s in sentences]
    one_batch = [[t.decode() for t in row] for row in member.tag(tf.ragged.constant(sentences))["tags"].to_list()]
    assert alone == one_batch


def test_members_must_share_the_tag_set():
    with pytest.raises(ValueError, match="share the tag set"):
        EnsembleTaggerModule([_member(1), _member(2, tags=["NOUN", "DET", "VERB", "ADP"])])
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleTaggerModule([])
