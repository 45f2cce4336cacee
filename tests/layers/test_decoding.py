"""Tests of layers/decoding.py: beam search against brute force on a tiny random model,
beam width 1 and cold sampling against greedy search, graph mode, nested states and a
SavedModel export."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from layers.decoding import (
    beam_search_decode,
    greedy_decode,
    length_normalized_scores,
    sample_decode,
    tile_to_beam,
)

VOCABULARY, END, PAD, MAX_LENGTH = 4, 0, -1, 3
START_TOKENS = np.array([1, 2, 3], np.int32)


def _tables(seed=0, scale=1.5):
    """Per batch entry, a second-order Markov model: logits[b, previous2, previous, next]."""
    rng = np.random.default_rng(seed)
    return (
        scale * rng.normal(size=(len(START_TOKENS), VOCABULARY, VOCABULARY, VOCABULARY))
    ).astype("float32")


def _model(tables):
    """A step function whose state is nested (a dict and a tuple) and must follow beams.

    The state holds the token before the previous one and the batch entry, so a beam
    that received another beam's state would score differently from brute force.
    """
    tables = tf.constant(tables)

    def step_fn(ids, state):
        previous2, batch_index = state["previous"], state["batch"]
        counter, unused = state["extra"]
        # No clipping: the decoders never feed the padding token (-1 here) to the model.
        logits = tf.gather_nd(tables, tf.stack([batch_index, previous2, ids], axis=1))
        new_state = {"previous": ids, "batch": batch_index, "extra": (counter + 1.0, unused)}
        return logits, new_state

    batch = len(START_TOKENS)
    initial_state = {
        "previous": tf.zeros([batch], tf.int32) + 2,
        "batch": tf.range(batch),
        "extra": (tf.zeros([batch, 1]), tf.zeros([batch, 2, 2])),
    }
    return step_fn, initial_state


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _brute_force(tables, b, normalization="none", alpha=0.0):
    """All hypotheses of batch entry b: END within MAX_LENGTH, or no END at MAX_LENGTH."""
    log_probs = _log_softmax(tables[b].astype(np.float64))
    hypotheses = {}
    for length in range(1, MAX_LENGTH + 1):
        for tokens in itertools.product(range(VOCABULARY), repeat=length):
            if END in tokens[:-1] or (length < MAX_LENGTH and tokens[-1] != END):
                continue
            history = (2, int(START_TOKENS[b])) + tokens
            total = sum(
                log_probs[history[t], history[t + 1], history[t + 2]] for t in range(length)
            )
            if normalization == "average":
                total /= length
            elif normalization == "gnmt":
                total /= ((5 + length) / 6) ** alpha
            hypotheses[tokens] = total
    return sorted(hypotheses.items(), key=lambda item: -item[1])


def _padded(tokens):
    return list(tokens) + [PAD] * (MAX_LENGTH - len(tokens))


@pytest.mark.parametrize("normalization, alpha", [("none", 0.0), ("average", 0.0), ("gnmt", 1.0)])
def test_exhaustive_beam_search_equals_brute_force(normalization, alpha):
    tables = _tables()
    step_fn, initial_state = _model(tables)
    beam_width = VOCABULARY**MAX_LENGTH  # no hypothesis is ever pruned
    result = beam_search_decode(
        step_fn,
        initial_state,
        START_TOKENS,
        END,
        MAX_LENGTH,
        beam_width,
        length_penalty=alpha,
        length_normalization=normalization,
        padding_token=PAD,
    )
    for b in range(len(START_TOKENS)):
        expected = _brute_force(tables, b, normalization, alpha)[:8]
        for rank, (tokens, score) in enumerate(expected):
            assert result.sequences[b, rank].numpy().tolist() == _padded(tokens)
            assert result.lengths[b, rank] == len(tokens)
            np.testing.assert_allclose(result.scores[b, rank], score, rtol=1e-5)


def test_small_beam_finds_the_best_hypothesis_of_a_peaked_model():
    tables = _tables(1, scale=4.0)
    step_fn, initial_state = _model(tables)
    result = beam_search_decode(
        step_fn, initial_state, START_TOKENS, END, MAX_LENGTH, beam_width=3, padding_token=PAD
    )
    for b in range(len(START_TOKENS)):
        best_tokens, best_score = _brute_force(tables, b)[0]
        assert result.sequences[b, 0].numpy().tolist() == _padded(best_tokens)
        np.testing.assert_allclose(result.log_probs[b, 0], best_score, rtol=1e-5)


def test_beam_width_one_equals_greedy():
    tables = _tables(2)
    step_fn, initial_state = _model(tables)
    greedy = greedy_decode(step_fn, initial_state, START_TOKENS, END, MAX_LENGTH, PAD)
    beam = beam_search_decode(
        step_fn,
        initial_state,
        START_TOKENS,
        END,
        MAX_LENGTH,
        1,
        length_penalty=0.6,
        padding_token=PAD,
    )
    np.testing.assert_array_equal(beam.sequences[:, 0], greedy.sequences)
    np.testing.assert_array_equal(beam.lengths[:, 0], greedy.lengths)
    np.testing.assert_allclose(beam.log_probs[:, 0], greedy.scores, rtol=1e-6)
    # Greedy search follows the argmax of the model.
    log_probs = _log_softmax(tables)
    for b in range(len(START_TOKENS)):
        history, score = [2, int(START_TOKENS[b])], 0.0
        for _ in range(MAX_LENGTH):
            token = int(np.argmax(log_probs[b, history[-2], history[-1]]))
            score += log_probs[b, history[-2], history[-1], token]
            history.append(token)
            if token == END:
                break
        assert greedy.sequences[b].numpy().tolist() == _padded(history[2:])
        np.testing.assert_allclose(greedy.scores[b], score, rtol=1e-5)


@pytest.mark.parametrize("options", [{"temperature": 0.0}, {"top_k": 1}, {"temperature": 1e-4}])
def test_cold_sampling_equals_greedy(options):
    step_fn, initial_state = _model(_tables(3))
    greedy = greedy_decode(step_fn, initial_state, START_TOKENS, END, MAX_LENGTH)
    sampled = sample_decode(
        step_fn, initial_state, START_TOKENS, END, MAX_LENGTH, seed=7, **options
    )
    np.testing.assert_array_equal(sampled.sequences, greedy.sequences)
    np.testing.assert_allclose(sampled.scores, greedy.scores, rtol=1e-6)


def test_sampling_follows_the_model_distribution_and_top_k():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4], np.float32))

    def step_fn(ids, state):
        return tf.tile(logits[None], [tf.shape(ids)[0], 1]), state

    start = tf.zeros([4000], tf.int32)
    sampled = sample_decode(step_fn, (), start, end_token=9, max_length=1, seed=0)
    frequencies = np.bincount(sampled.sequences.numpy()[:, 0], minlength=4) / 4000
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.3, 0.4], atol=0.03)
    again = sample_decode(step_fn, (), start, end_token=9, max_length=1, seed=0)
    np.testing.assert_array_equal(again.sequences, sampled.sequences)
    top_2 = sample_decode(step_fn, (), start, end_token=9, max_length=1, top_k=2, seed=1)
    frequencies = np.bincount(top_2.sequences.numpy()[:, 0], minlength=4) / 4000
    np.testing.assert_allclose(frequencies, [0, 0, 3 / 7, 4 / 7], atol=0.03)


def test_all_decoders_run_in_graph_mode_with_unknown_batch_and_match_eager():
    tables = _tables(4)
    step_fn, _ = _model(tables)

    def decode_all(start_tokens):
        batch = tf.shape(start_tokens)[0]
        state = {
            "previous": tf.zeros([batch], tf.int32) + 2,
            "batch": tf.range(batch),
            "extra": (tf.zeros([batch, 1]), tf.zeros([batch, 2, 2])),
        }
        return (
            greedy_decode(step_fn, state, start_tokens, END, MAX_LENGTH, PAD),
            beam_search_decode(
                step_fn, state, start_tokens, END, MAX_LENGTH, 4, 0.6, padding_token=PAD
            ),
            sample_decode(step_fn, state, start_tokens, END, MAX_LENGTH, 0.8, 3, seed=5),
        )

    graph = tf.function(decode_all, input_signature=[tf.TensorSpec([None], tf.int32)])
    for eager_result, graph_result in zip(
        decode_all(START_TOKENS), graph(START_TOKENS), strict=True
    ):
        for eager_field, graph_field in zip(eager_result, graph_result, strict=True):
            np.testing.assert_allclose(eager_field, graph_field, rtol=1e-6)


def test_serving_inputs_as_tensors_max_length_temperature_top_k():
    step_fn, _ = _model(_tables(6))
    signature = [
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.float32),
        tf.TensorSpec([], tf.int32),
    ]

    @tf.function(input_signature=signature)
    def serve(start_tokens, max_length, temperature, top_k):
        batch = tf.shape(start_tokens)[0]
        state = {
            "previous": tf.zeros([batch], tf.int32) + 2,
            "batch": tf.range(batch),
            "extra": (tf.zeros([batch, 1]), tf.zeros([batch, 2, 2])),
        }
        sampled = sample_decode(
            step_fn,
            state,
            start_tokens,
            END,
            max_length,
            temperature,
            top_k,
            seed=3,
            padding_token=PAD,
        )
        beam = beam_search_decode(
            step_fn, state, start_tokens, END, max_length, 2, padding_token=PAD
        )
        return sampled, beam

    _, initial_state = _model(_tables(6))
    greedy = greedy_decode(step_fn, initial_state, START_TOKENS, END, 2, PAD)
    for temperature, top_k in [(0.0, 0), (1.0, 1)]:
        sampled, beam = serve(
            START_TOKENS, tf.constant(2), tf.constant(temperature), tf.constant(top_k)
        )
        np.testing.assert_array_equal(sampled.sequences, greedy.sequences)
        assert beam.sequences.shape == (len(START_TOKENS), 2, 2)
    hot, _ = serve(START_TOKENS, tf.constant(3), tf.constant(5.0), tf.constant(0))
    assert hot.sequences.shape == (len(START_TOKENS), 3)


def test_beam_search_exports_in_a_saved_model(tmp_path):
    class Translator(tf.Module):
        def __init__(self):
            self.table = tf.Variable(_tables(5)[0, 2])  # first-order model [V, V]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def translate(self, start_tokens):
            def step_fn(ids, state):
                return tf.gather(self.table, ids), state

            result = beam_search_decode(
                step_fn, (), start_tokens, END, MAX_LENGTH, 3, 0.6, padding_token=PAD
            )
            return {"sequences": result.sequences, "scores": result.scores}

    translator = Translator()
    expected = translator.translate(tf.constant(START_TOKENS))
    tf.saved_model.save(translator, str(tmp_path))
    reloaded = tf.saved_model.load(str(tmp_path))
    actual = reloaded.translate(tf.constant(START_TOKENS))
    np.testing.assert_array_equal(actual["sequences"], expected["sequences"])
    np.testing.assert_allclose(actual["scores"], expected["scores"])


def test_tile_to_beam_and_length_normalization():
    tiled = tile_to_beam({"a": tf.constant([[1], [2]]), "b": (tf.constant([3, 4]),)}, 2)
    assert tiled["a"].numpy()[:, 0].tolist() == [1, 1, 2, 2]
    assert tiled["b"][0].numpy().tolist() == [3, 3, 4, 4]
    log_probs, lengths = tf.constant([-6.0]), tf.constant([3])
    assert float(length_normalized_scores(log_probs, lengths, "none")[0]) == -6.0
    assert float(length_normalized_scores(log_probs, lengths, "average")[0]) == -2.0
    np.testing.assert_allclose(
        length_normalized_scores(log_probs, lengths, "gnmt", 0.6)[0], -6.0 / (8 / 6) ** 0.6
    )


def test_invalid_arguments_are_reported():
    step_fn, initial_state = _model(_tables())
    with pytest.raises(ValueError, match="length_normalization"):
        beam_search_decode(
            step_fn, initial_state, START_TOKENS, END, 3, 2, length_normalization="wu"
        )
    with pytest.raises(ValueError, match="max_length"):
        greedy_decode(step_fn, initial_state, START_TOKENS, END, 0)
    with pytest.raises(ValueError, match="temperature"):
        sample_decode(step_fn, initial_state, START_TOKENS, END, 3, temperature=-1.0)
