"""Tests of layers/attention.py: score formulas against NumPy, masking, precomputed keys,
the decoder cell against a step-by-step reference, save/load, and decoding with it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.attention import (
    AttentionDecoder,
    AttentionDecoderCell,
    BahdanauAttention,
    LuongAttention,
    masked_softmax,
)
from layers.decoding import beam_search_decode, greedy_decode, tile_to_beam

BATCH, SOURCE_LENGTH, QUERY_SIZE, MEMORY_SIZE = 3, 5, 4, 6


def _inputs(seed=0, query_size=QUERY_SIZE, memory_size=MEMORY_SIZE):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(BATCH, query_size)).astype("float32")
    memory = rng.normal(size=(BATCH, SOURCE_LENGTH, memory_size)).astype("float32")
    lengths = np.array([5, 2, 0])  # the last row is entirely masked
    mask = np.arange(SOURCE_LENGTH)[None, :] < lengths[:, None]
    return query, memory, mask


def _softmax_reference(scores, mask):
    weights = np.zeros_like(scores)
    for b in range(scores.shape[0]):
        valid = mask[b]
        if valid.any():
            exp = np.exp(scores[b, valid] - scores[b, valid].max())
            weights[b, valid] = exp / exp.sum()
    return weights


def _check_against_reference(layer, query, memory, mask, scores):
    context, alignments = layer(query, memory, memory_mask=mask)
    context, alignments = np.asarray(context), np.asarray(alignments)
    expected = _softmax_reference(scores, mask)
    np.testing.assert_allclose(alignments, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        context, np.einsum("bs,bsd->bd", expected, memory), rtol=1e-5, atol=1e-5
    )
    assert np.all(alignments[~mask] == 0)
    np.testing.assert_allclose(alignments[mask.any(axis=1)].sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(np.isfinite(context)) and np.all(context[~mask.any(axis=1)] == 0)


def test_bahdanau_matches_numpy():
    query, memory, mask = _inputs()
    layer = BahdanauAttention(7)
    layer(query, memory, memory_mask=mask)
    w1 = np.asarray(layer.query_dense.kernel)
    w2 = np.asarray(layer.memory_dense.kernel)
    v = np.asarray(layer.attention_v)
    scores = np.tanh((query @ w1)[:, None, :] + memory @ w2) @ v
    _check_against_reference(layer, query, memory, mask, scores)


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_luong_matches_numpy(score):
    query_size = MEMORY_SIZE if score == "dot" else QUERY_SIZE
    query, memory, mask = _inputs(1, query_size=query_size)
    layer = LuongAttention(7 if score == "concat" else None, score=score, scale=True)
    layer(query, memory, memory_mask=mask)
    layer.attention_g.assign(1.7)
    if score == "dot":
        scores = np.einsum("bd,bsd->bs", query, memory)
    elif score == "general":
        scores = np.einsum("bd,bsd->bs", query, memory @ np.asarray(layer.memory_dense.kernel))
    else:
        w1 = np.asarray(layer.query_dense.kernel)
        w2 = np.asarray(layer.memory_dense.kernel)
        scores = np.tanh((query @ w1)[:, None, :] + memory @ w2) @ np.asarray(layer.attention_v)
    _check_against_reference(layer, query, memory, mask, 1.7 * scores)


def test_luong_rejects_mismatched_sizes():
    query, memory, _ = _inputs()
    with pytest.raises(ValueError, match="equal size"):
        LuongAttention(score="dot")(query, memory)
    with pytest.raises(ValueError, match="units == query size"):
        LuongAttention(5, score="general")(query, memory)
    with pytest.raises(ValueError, match="Unknown Luong score"):
        LuongAttention(score="additive")


def test_precomputed_keys_and_keras_mask_give_the_same_result():
    query, memory, mask = _inputs(2)
    layer = BahdanauAttention(5)
    context, alignments = layer(query, memory, memory_mask=mask)
    keys = layer.setup_memory(memory)
    context_2, alignments_2 = layer(query, memory, memory_mask=mask, memory_keys=keys)
    np.testing.assert_allclose(context, context_2, rtol=1e-6)
    np.testing.assert_allclose(alignments, alignments_2, rtol=1e-6)

    # Inside a functional model, the mask comes from the memory's Keras mask.
    memory_in = keras.Input((None, MEMORY_SIZE))
    query_in = keras.Input((QUERY_SIZE,))
    masked_memory = keras.layers.Masking(0.0)(memory_in)
    model = keras.Model([query_in, memory_in], layer(query_in, masked_memory))
    padded = np.where(mask[..., None], memory, 0.0).astype("float32")
    _, alignments_3 = model([query, padded])
    np.testing.assert_allclose(alignments_3, alignments, rtol=1e-5, atol=1e-7)


def test_masked_softmax_all_masked_row_is_zero_not_nan():
    weights = np.asarray(masked_softmax(np.zeros((2, 3), "float32"), np.zeros((2, 3), bool)))
    assert np.all(weights == 0)


def _decoder_cell(wrapped, attention, **kwargs):
    return AttentionDecoderCell(wrapped, attention, attention_layer_units=5, **kwargs)


@pytest.mark.parametrize("input_feeding", [True, False])
def test_attention_decoder_matches_a_step_by_step_reference(input_feeding):
    rng = np.random.default_rng(3)
    _, memory, memory_mask = _inputs(3)
    memory_mask[2, :3] = True  # every row needs a source for this reference
    targets = rng.normal(size=(BATCH, 4, 2)).astype("float32")
    target_mask = np.arange(4)[None, :] < np.array([4, 2, 3])[:, None]
    cell = _decoder_cell(keras.layers.LSTMCell(6), LuongAttention(6), input_feeding=input_feeding)
    decoder = AttentionDecoder(cell, return_state=True)
    outputs, alignments, *final_states = decoder(
        targets, memory, inputs_mask=target_mask, memory_mask=memory_mask
    )
    outputs, alignments = np.asarray(outputs), np.asarray(alignments)
    assert outputs.shape == (BATCH, 4, 5) and alignments.shape == (BATCH, 4, SOURCE_LENGTH)
    assert len(final_states) == 3  # h, c, attentional vector

    w_c = np.asarray(cell.attention_dense.kernel)
    h, c = np.zeros((BATCH, 6), "float32"), np.zeros((BATCH, 6), "float32")
    attentional = np.zeros((BATCH, 5), "float32")
    for t in range(4):
        x = np.concatenate([targets[:, t], attentional], -1) if input_feeding else targets[:, t]
        new_h, (_, new_c) = cell.cell(x, [h, c])
        context, step_alignments = cell.attention(new_h, memory, memory_mask=memory_mask)
        new_attentional = np.tanh(np.concatenate([context, new_h], -1) @ w_c)
        valid = target_mask[:, t]
        np.testing.assert_allclose(outputs[valid, t], new_attentional[valid], atol=1e-5)
        np.testing.assert_allclose(
            alignments[valid, t], np.asarray(step_alignments)[valid], atol=1e-6
        )
        assert np.all(outputs[~valid, t] == 0) and np.all(alignments[~valid, t] == 0)
        keep = valid[:, None]
        h = np.where(keep, new_h, h)
        c = np.where(keep, new_c, c)
        attentional = np.where(keep, new_attentional, attentional)
    np.testing.assert_allclose(final_states[0], h, atol=1e-5)
    np.testing.assert_allclose(final_states[2], attentional, atol=1e-5)
    assert np.all(alignments[~memory_mask[:, None, :].repeat(4, 1)] == 0)


def _decoder_model(cell):
    targets = keras.Input((None, 2))
    memory = keras.Input((None, MEMORY_SIZE))
    masked_targets = keras.layers.Masking(0.0)(targets)
    masked_memory = keras.layers.Masking(0.0)(memory)
    outputs, alignments = AttentionDecoder(cell)(masked_targets, masked_memory)
    return keras.Model([targets, memory], [outputs, alignments])


@pytest.mark.parametrize(
    "make_cell",
    [
        lambda: _decoder_cell(keras.layers.LSTMCell(6), BahdanauAttention(4)),
        lambda: AttentionDecoderCell(
            keras.layers.GRUCell(6), LuongAttention(score="concat", units=3)
        ),
    ],
    ids=["lstm-bahdanau", "gru-luong-concat-no-attention-layer"],
)
def test_attention_decoder_saves_and_loads(tmp_path, make_cell):
    model = _decoder_model(make_cell())
    rng = np.random.default_rng(4)
    targets = rng.normal(size=(2, 3, 2)).astype("float32")
    memory = rng.normal(size=(2, SOURCE_LENGTH, MEMORY_SIZE)).astype("float32")
    memory[1, 3:] = 0.0
    targets[0, 2:] = 0.0
    expected = [np.asarray(x) for x in model([targets, memory])]
    assert np.all(expected[1][1, :, 3:] == 0) and np.all(expected[0][0, 2:] == 0)
    path = str(tmp_path / "decoder.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    for actual, wanted in zip(restored([targets, memory]), expected, strict=True):
        np.testing.assert_allclose(actual, wanted, atol=1e-6)


def test_cell_drives_beam_search_in_graph_mode_with_tiled_memory():
    vocabulary, beam_width, max_length = 7, 3, 5
    embedding = keras.layers.Embedding(vocabulary, 4)
    project = keras.layers.Dense(vocabulary)
    cell = _decoder_cell(keras.layers.GRUCell(6), BahdanauAttention(5), alignments_in_state=True)
    _, memory, mask = _inputs(5)
    mask[2, 0] = True

    def decode(memory, mask, beam):  # beam 0: greedy search
        batch, length = tf.shape(memory)[0], tf.shape(memory)[1]
        if beam > 0:
            memory, mask = tile_to_beam((memory, mask), beam)
        keys = cell.attention.setup_memory(memory)

        def step_fn(ids, states):
            output, states = cell(
                embedding(ids), states, memory=memory, memory_mask=mask, memory_keys=keys
            )
            return project(output), states

        initial = cell.get_initial_state(batch_size=batch, memory_length=length)
        start = tf.fill([batch], 1)
        if beam == 0:
            return greedy_decode(step_fn, initial, start, end_token=0, max_length=max_length)
        return beam_search_decode(
            step_fn, initial, start, end_token=0, max_length=max_length, beam_width=beam
        )

    greedy = decode(memory, mask, 0)  # eager: builds the layers
    signature = [tf.TensorSpec([None, None, MEMORY_SIZE]), tf.TensorSpec([None, None], tf.bool)]
    both = tf.function(lambda m, k: (decode(m, k, 1), decode(m, k, 3)), input_signature=signature)
    beam_1, beam_3 = both(memory, mask)
    np.testing.assert_array_equal(beam_1.sequences[:, 0], greedy.sequences)
    np.testing.assert_allclose(beam_1.scores[:, 0], greedy.scores, rtol=1e-5)
    assert beam_3.sequences.shape == (BATCH, beam_width, max_length)
    assert np.all(np.diff(beam_3.scores.numpy(), axis=1) <= 0)


def test_dropout_cell_masks_are_made_outside_the_loop_and_reset():
    cell = _decoder_cell(
        keras.layers.LSTMCell(6, dropout=0.5, recurrent_dropout=0.5), LuongAttention()
    )
    decoder = AttentionDecoder(cell, return_alignments=False)
    rng = np.random.default_rng(6)
    targets = rng.normal(size=(2, 3, 2)).astype("float32")
    memory = rng.normal(size=(2, SOURCE_LENGTH, MEMORY_SIZE)).astype("float32")
    inference = np.asarray(decoder(targets, memory))
    trained = tf.function(lambda x, m: decoder(x, m, training=True))(targets, memory)
    assert not np.allclose(trained, inference)  # dropout is active in training
    decoder(targets, memory, training=True)  # eagerly: no mask left over from the graph
    np.testing.assert_allclose(decoder(targets, memory), inference, atol=1e-6)
