"""Truncated-BPTT stream batching: exact placement on a counted corpus."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.streams import independent_windows, stream_arrays, stream_layout, stream_windows


@pytest.mark.parametrize("num_tokens,batch_size,bptt", [(101, 4, 5), (64, 3, 7), (50, 1, 10)])
def test_token_k_of_stream_b_is_in_its_place_in_every_window(num_tokens, batch_size, bptt):
    corpus = np.arange(num_tokens)  # token value = its position in the corpus
    layout = stream_layout(num_tokens, batch_size, bptt)
    length = (num_tokens - 1) // batch_size
    assert layout.stream_length == length
    assert layout.num_windows == length // bptt
    windows = list(stream_windows(corpus, batch_size, bptt).as_numpy_iterator())
    assert len(windows) == layout.num_windows
    for w, (inputs, targets) in enumerate(windows):
        assert inputs.shape == targets.shape == (batch_size, bptt)
        for b in range(batch_size):
            for t in range(bptt):
                k = w * bptt + t  # step k of stream b
                assert inputs[b, t] == b * length + k
                assert targets[b, t] == b * length + k + 1


def test_streams_continue_across_windows_and_cover_each_target_once():
    corpus = np.arange(1000)
    inputs, targets, weights = stream_arrays(corpus, batch_size=5, bptt=9)
    assert weights.min() == 1.0
    # Window w+1 of each stream starts where window w ended.
    np.testing.assert_array_equal(inputs[1:, :, 0], targets[:-1, :, -1])
    flat = targets.reshape(-1)
    assert len(set(flat.tolist())) == flat.size  # no target twice
    assert flat.size == stream_layout(1000, 5, 9).num_targets


@pytest.mark.parametrize(
    "num_tokens,batch_size,bptt", [(101, 4, 5), (23, 3, 4), (10, 20, 3), (2, 1, 5)]
)
def test_evaluation_layout_covers_the_whole_split(num_tokens, batch_size, bptt):
    corpus = np.arange(num_tokens) + 7  # no real token is 0, the padding id
    inputs, targets, weights = stream_arrays(corpus, batch_size, bptt, drop_remainder=False)
    assert weights.sum() == num_tokens - 1
    real_targets = targets[weights == 1.0]
    assert sorted(real_targets.tolist()) == list(range(8, num_tokens + 7))
    assert np.all(targets[weights == 1.0] == inputs[weights == 1.0] + 1)
    assert np.all(targets[weights == 0.0] == 0)


def test_weights_come_with_the_dataset_when_asked():
    element = next(
        iter(stream_windows(np.arange(30), 2, 4, drop_remainder=False, with_weights=True))
    )
    assert len(element) == 3 and element[2].dtype.name == "float32"


def test_independent_windows_are_shuffled_chunks_of_the_corpus():
    corpus = np.arange(200)
    batches = list(independent_windows(corpus, batch_size=4, bptt=8, seed=3).as_numpy_iterator())
    assert len(batches) == (199 // 8) // 4
    starts = []
    for inputs, targets in batches:
        np.testing.assert_array_equal(targets, inputs + 1)
        np.testing.assert_array_equal(inputs - inputs[:, :1], np.tile(np.arange(8), (4, 1)))
        starts.extend(inputs[:, 0].tolist())
    assert all(start % 8 == 0 for start in starts)
    assert starts != sorted(starts)  # shuffled
    assert len(set(starts)) == len(starts)


def test_short_corpora_and_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="corpus too short.*lower batch_size or bptt"):
        stream_layout(10, batch_size=4, bptt=5)
    with pytest.raises(ValueError, match="corpus too short"):
        independent_windows(np.arange(10), batch_size=4, bptt=5)
    with pytest.raises(ValueError, match="bptt must be a positive integer"):
        stream_layout(100, 2, 0)
    with pytest.raises(ValueError, match="rank 1"):
        stream_arrays(np.zeros((3, 3)), 1, 1)
