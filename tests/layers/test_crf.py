"""Tests of layers/crf.py: brute force over all tag paths on tiny cases, constraints,
gradients, save/load, and a CRF tagger that trains and exports."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.crf import (
    CRF,
    CRFTagger,
    allowed_transitions,
    crf_log_likelihood,
    crf_log_partition,
    crf_marginals,
    crf_posterior_decode,
    crf_sequence_score,
    crf_viterbi_decode,
)

NUM_TAGS = 3
MAX_LENGTH = 4
LENGTHS = np.array([4, 3, 1, 2, 0])  # right-padded; the last sequence is empty


def _random_problem(seed, boundary=True):
    rng = np.random.default_rng(seed)
    batch = len(LENGTHS)
    potentials = rng.normal(size=(batch, MAX_LENGTH, NUM_TAGS)).astype("float32")
    transitions = rng.normal(size=(NUM_TAGS, NUM_TAGS)).astype("float32")
    start = rng.normal(size=NUM_TAGS).astype("float32") if boundary else None
    end = rng.normal(size=NUM_TAGS).astype("float32") if boundary else None
    mask = np.arange(MAX_LENGTH)[None, :] < LENGTHS[:, None]
    tags = rng.integers(0, NUM_TAGS, size=(batch, MAX_LENGTH))
    tags[~mask] = -1  # garbage at padded steps must be ignored
    return potentials, transitions, start, end, mask, tags


def _path_score(unary, path, transitions, start, end):
    score = sum(unary[t, tag] for t, tag in enumerate(path))
    score += sum(transitions[a, b] for a, b in itertools.pairwise(path))
    if start is not None:
        score += start[path[0]] + end[path[-1]]
    return score


def _all_paths(unary, length, transitions, start, end):
    return {
        path: _path_score(unary, path, transitions, start, end)
        for path in itertools.product(range(NUM_TAGS), repeat=length)
    }


@pytest.mark.parametrize("boundary", [True, False])
def test_likelihood_and_log_partition_match_brute_force(boundary):
    potentials, transitions, start, end, mask, tags = _random_problem(0, boundary)
    log_z = np.asarray(crf_log_partition(potentials, transitions, mask, start, end))
    score = np.asarray(crf_sequence_score(potentials, tags, transitions, mask, start, end))
    log_likelihood = np.asarray(crf_log_likelihood(potentials, tags, transitions, mask, start, end))
    for b, length in enumerate(LENGTHS):
        if length == 0:
            assert log_z[b] == 0 and score[b] == 0 and log_likelihood[b] == 0
            continue
        paths = _all_paths(potentials[b], length, transitions, start, end)
        expected_log_z = np.log(np.sum(np.exp(np.array(list(paths.values()), np.float64))))
        expected_score = paths[tuple(tags[b, :length])]
        np.testing.assert_allclose(log_z[b], expected_log_z, rtol=1e-5)
        np.testing.assert_allclose(score[b], expected_score, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            log_likelihood[b], expected_score - expected_log_z, rtol=1e-5, atol=1e-5
        )


def test_no_mask_means_full_length():
    potentials, transitions, start, end, _, _ = _random_problem(1)
    full = np.ones(potentials.shape[:2], bool)
    np.testing.assert_allclose(
        crf_log_partition(potentials, transitions, None, start, end),
        crf_log_partition(potentials, transitions, full, start, end),
    )


@pytest.mark.parametrize("boundary", [True, False])
def test_viterbi_matches_brute_force_argmax(boundary):
    potentials, transitions, start, end, mask, _ = _random_problem(2, boundary)
    tags, scores = crf_viterbi_decode(potentials, transitions, mask, start, end)
    tags, scores = np.asarray(tags), np.asarray(scores)
    assert tags.dtype == np.int32
    for b, length in enumerate(LENGTHS):
        assert np.all(tags[b, length:] == 0)
        if length == 0:
            assert scores[b] == 0
            continue
        paths = _all_paths(potentials[b], length, transitions, start, end)
        best = max(paths, key=paths.get)
        assert tuple(tags[b, :length]) == best
        np.testing.assert_allclose(scores[b], paths[best], rtol=1e-5)


@pytest.mark.parametrize("boundary", [True, False])
def test_marginals_match_brute_force(boundary):
    potentials, transitions, start, end, mask, _ = _random_problem(5, boundary)
    marginals = np.asarray(crf_marginals(potentials, transitions, mask, start, end))
    for b, length in enumerate(LENGTHS):
        assert np.all(marginals[b, length:] == 0)
        if length == 0:
            continue
        paths = _all_paths(potentials[b], length, transitions, start, end)
        weights = np.exp(np.array(list(paths.values()), np.float64))
        weights /= weights.sum()
        expected = np.zeros((length, NUM_TAGS))
        for path, weight in zip(paths, weights):
            expected[np.arange(length), path] += weight
        np.testing.assert_allclose(marginals[b, :length], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("boundary", [True, False])
def test_posterior_decoding_maximises_expected_correct_tags(boundary):
    potentials, transitions, start, end, mask, _ = _random_problem(6, boundary)
    tags, marginals = crf_posterior_decode(potentials, transitions, mask, start, end)
    tags, marginals = np.asarray(tags), np.asarray(marginals)
    for b, length in enumerate(LENGTHS):
        assert np.all(tags[b, length:] == 0)
        np.testing.assert_array_equal(tags[b, :length], marginals[b, :length].argmax(-1))


def test_constrained_posterior_decoding_picks_the_best_valid_path():
    tags = ["O", "B-X", "I-X", "E-X", "S-X"]
    keras.utils.set_random_seed(0)  # the CRF's initial transitions
    crf = CRF.for_tags(tags, "bioes", boundary_initializer="random_normal")
    allowed = allowed_transitions(tags, "bioes")
    rng = np.random.default_rng(7)
    batch, length = 256, 4  # weak potentials: uncertain tags, whose argmax is often invalid
    potentials = rng.normal(size=(batch, length, len(tags))).astype("float32")
    lengths = rng.integers(1, length + 1, size=batch)
    mask = np.arange(length)[None, :] < lengths[:, None]
    decoded, marginals = (np.asarray(x) for x in crf.posterior_decode(potentials, mask))
    np.testing.assert_allclose(marginals, np.asarray(crf.marginals(potentials, mask)))
    unconstrained_argmax_invalid = 0
    for b in range(batch):
        n = lengths[b]
        assert _valid_path(decoded[b, :n], allowed), decoded[b]
        expected = {
            path: marginals[b, np.arange(n), path].sum()
            for path in itertools.product(range(len(tags)), repeat=n)
            if _valid_path(path, allowed)
        }
        best = max(expected.values())
        np.testing.assert_allclose(expected[tuple(decoded[b, :n])], best, rtol=1e-5)
        unconstrained_argmax_invalid += not _valid_path(marginals[b, :n].argmax(-1), allowed)
    assert unconstrained_argmax_invalid > 0  # the constraint did some work


def test_allowed_transitions_bio():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    allowed = allowed_transitions(tags, "bio")
    index = {tag: i for i, tag in enumerate(tags)}

    def ok(a, b):
        return allowed.transitions[index[a], index[b]]

    assert ok("O", "B-PER") and ok("B-PER", "I-PER") and ok("I-PER", "I-PER")
    assert ok("I-PER", "B-LOC") and ok("I-LOC", "O") and ok("B-PER", "B-PER")
    assert not ok("O", "I-PER") and not ok("B-PER", "I-LOC") and not ok("I-LOC", "I-PER")
    assert allowed.start.tolist() == [True, True, False, True, False]
    assert allowed.end.all()


def test_allowed_transitions_bioes_and_bilou_aliases():
    tags = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "E-Y"]
    allowed = allowed_transitions(tags, "BIOES")
    index = {tag: i for i, tag in enumerate(tags)}

    def ok(a, b):
        return allowed.transitions[index[a], index[b]]

    assert ok("B-X", "I-X") and ok("B-X", "E-X") and ok("E-X", "B-Y") and ok("S-X", "S-X")
    assert ok("O", "S-X") and ok("E-Y", "O")
    assert not ok("B-X", "O") and not ok("I-X", "B-X") and not ok("O", "E-X")
    assert not ok("B-X", "E-Y") and not ok("E-X", "I-X") and not ok("S-X", "E-X")
    assert allowed.start.tolist() == [True, True, False, False, True, True, False]
    assert allowed.end.tolist() == [True, False, False, True, True, False, True]
    bilou = allowed_transitions(["O", "B-X", "I-X", "L-X", "U-X"], "bioes")
    np.testing.assert_array_equal(bilou.transitions, allowed.transitions[:5, :5])


def test_allowed_transitions_iob1_and_io():
    tags = ["O", "I-X", "B-X", "I-Y"]
    iob1 = allowed_transitions(tags, "iob1")
    assert iob1.transitions[0, 1] and iob1.transitions[3, 1]  # I-x may start a chunk
    assert iob1.transitions[1, 2] and not iob1.transitions[0, 2] and not iob1.transitions[3, 2]
    assert iob1.start.tolist() == [True, True, False, True]
    assert allowed_transitions(tags[:2] + tags[3:], "io").transitions.all()


def test_allowed_transitions_errors():
    with pytest.raises(ValueError, match="'<pad>' is not valid in the BIO scheme"):
        allowed_transitions(["O", "<pad>"], "bio")
    with pytest.raises(ValueError, match="not valid in the IO scheme"):
        allowed_transitions(["O", "B-X"], "io")
    with pytest.raises(ValueError, match="Unknown tagging scheme"):
        allowed_transitions(["O"], "bilou2")


def _valid_path(path, allowed):
    if not allowed.start[path[0]] or not allowed.end[path[-1]]:
        return False
    return all(allowed.transitions[a, b] for a, b in itertools.pairwise(path))


def test_constrained_crf_never_decodes_invalid_paths_and_excludes_them_from_the_loss():
    tags = ["O", "B-X", "I-X", "E-X", "S-X"]
    crf = CRF.for_tags(tags, "bioes", boundary_initializer="random_normal")
    allowed = allowed_transitions(tags, "bioes")
    rng = np.random.default_rng(3)
    batch, length = 64, 5
    potentials = (3 * rng.normal(size=(batch, length, len(tags)))).astype("float32")
    lengths = rng.integers(1, length + 1, size=batch)
    mask = np.arange(length)[None, :] < lengths[:, None]
    decoded, _ = crf.decode(potentials, mask)
    decoded = np.asarray(decoded)
    for b in range(batch):
        assert _valid_path(decoded[b, : lengths[b]], allowed), decoded[b]

    # The partition function sums over the valid paths only.
    transitions, start, end = (np.asarray(w) for w in crf.constrained_weights())
    log_z = np.asarray(crf.log_partition(potentials[:2, :3]))
    for b in range(2):
        valid = [
            _path_score(potentials[b, :3], path, transitions, start, end)
            for path in itertools.product(range(len(tags)), repeat=3)
            if _valid_path(path, allowed)
        ]
        np.testing.assert_allclose(log_z[b], np.log(np.sum(np.exp(valid))), rtol=1e-5)


def test_xla_decoding_on_bucket_shapes_equals_plain_decoding():
    """`CRF(jit_compile=True)`: Viterbi as an XLA program on shapes padded to buckets
    (5 sentences of 4 steps run as 6 x 4; 3 x 7 as 3 x 8), the same paths and scores."""
    tags = ["O", "B-X", "I-X", "E-X", "S-X"]
    plain = CRF.for_tags(tags, "bioes", boundary_initializer="random_normal")
    plain.build((None, None, len(tags)))
    compiled = CRF.from_config({**plain.get_config(), "jit_compile": True})
    compiled.build((None, None, len(tags)))
    compiled.set_weights(plain.get_weights())
    assert compiled.get_config()["jit_compile"] is True and plain.jit_compile is False
    rng = np.random.default_rng(5)
    for batch, length in ((5, 4), (3, 7)):
        potentials = (3 * rng.normal(size=(batch, length, len(tags)))).astype("float32")
        lengths = rng.integers(0, length + 1, size=batch)
        mask = np.arange(length)[None, :] < lengths[:, None]
        for m in (mask, None):
            expected_tags, expected_scores = plain.decode(potentials, m)
            got_tags, got_scores = tf.function(compiled.decode)(potentials, m)
            np.testing.assert_array_equal(got_tags, expected_tags)
            np.testing.assert_allclose(got_scores, expected_scores, rtol=1e-5, atol=1e-5)


def test_gradients_flow_to_potentials_and_transitions_but_not_to_forbidden_entries():
    crf = CRF.for_tags(["O", "B-X", "I-X"], "bio")
    potentials, _, _, _, mask, tags = _random_problem(4)
    potentials = tf.constant(potentials)
    with tf.GradientTape() as tape:
        tape.watch(potentials)
        loss = crf.loss(potentials, tags, mask)
    variables = [potentials, crf.transitions, crf.start_transitions, crf.end_transitions]
    grads = [np.asarray(g) for g in tape.gradient(loss, variables)]
    assert all(np.all(np.isfinite(g)) and np.abs(g).sum() > 0 for g in grads)
    assert grads[1][0, 2] == 0  # O -> I-X is forbidden
    assert grads[2][2] == 0  # I-X cannot start
    assert np.all(grads[0][~mask] == 0)  # padded steps get no gradient


def test_crf_layer_in_functional_model_saves_and_loads(tmp_path):
    potentials_in = keras.Input((None, NUM_TAGS))
    masked = keras.layers.Masking(mask_value=0.0)(potentials_in)
    crf = CRF(NUM_TAGS, allowed_transitions=np.eye(NUM_TAGS) == 0, name="crf")
    model = keras.Model(potentials_in, crf(masked))
    potentials, *_ = _random_problem(5)
    potentials[1, 3:] = 0.0  # padding recognised by Masking
    expected = np.asarray(model(potentials))
    assert expected.dtype == np.int32 and np.all(expected[1, 3:] == 0)
    path = str(tmp_path / "crf.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(restored(potentials)), expected)
    assert restored.get_layer("crf").allowed_transitions == crf.allowed_transitions


def _tagging_data(num_examples=96, length=7, vocabulary=12, seed=0):
    """Token k in 1..vocabulary-1 tags as k % 3; 0 is padding. Lengths vary."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, vocabulary, size=(num_examples, length))
    lengths = rng.integers(2, length + 1, size=num_examples)
    tokens[np.arange(length)[None, :] >= lengths[:, None]] = 0
    tags = np.where(tokens > 0, tokens % 3, 0)
    return tokens.astype("int32"), tags.astype("int32")


def _backbone(vocabulary=12, num_tags=3):
    """Embedding -> Dense: the mask of `mask_zero` reaches the CRF through the Dense.

    (An app puts a BiLSTM in between; it is left out here to keep graph tracing cheap.)
    """
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocabulary, 8, mask_zero=True)(tokens)
    return keras.Model(tokens, keras.layers.Dense(num_tags)(x))


def test_crf_tagger_trains_and_exports(tmp_path):
    keras.utils.set_random_seed(0)
    tokens, tags = _tagging_data()
    tagger = CRFTagger(_backbone(), crf=CRF(3, name="crf"))
    tagger.compile(optimizer=keras.optimizers.Adam(0.05))
    history = tagger.fit(tokens, tags, batch_size=32, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses

    outputs = {key: np.asarray(value) for key, value in tagger(tokens[:8]).items()}
    mask = tokens[:8] > 0
    np.testing.assert_array_equal(outputs["mask"], mask)
    assert (outputs["tags"][mask] == tags[:8][mask]).mean() > 0.9
    assert np.all(outputs["tags"][~mask] == 0)

    keras_path = str(tmp_path / "tagger.keras")
    tagger.save(keras_path)
    restored = keras.saving.load_model(keras_path)
    np.testing.assert_array_equal(np.asarray(restored(tokens[:8])["tags"]), outputs["tags"])

    export_path = str(tmp_path / "export")
    tagger.export(
        export_path, verbose=False, input_signature=[tf.TensorSpec([None, None], tf.int32)]
    )
    reloaded = tf.saved_model.load(export_path)
    served = reloaded.serve(tf.constant(tokens[:8]))
    np.testing.assert_array_equal(served["tags"].numpy(), outputs["tags"])
