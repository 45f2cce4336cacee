"""The XLA loop of `Recurrent` runs on inputs padded to bucket shapes, with the results of
the unpadded call."""

import numpy as np
import pytest
import tensorflow as tf

from layers import Recurrent, build_cell
from layers.loop import buckets
from layers.loop.buckets import BUCKET_SIZES, bucket_size
from tests.layers.numpy_reference import randomize_weights

RNG = np.random.default_rng(45)


def test_bucket_sizes_are_powers_of_two_and_their_three_halves():
    assert BUCKET_SIZES[:12] == (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
    got = {size: int(bucket_size(size)) for size in (1, 2, 3, 5, 7, 9, 13, 17, 25, 33, 100, 129, 2000)}
    assert got == {1: 1, 2: 2, 3: 3, 5: 6, 7: 8, 9: 12, 13: 16, 17: 24, 25: 32, 33: 48,
                   100: 128, 129: 192, 2000: 2048}
    assert int(bucket_size(0)) == 0 and int(bucket_size(2**25 + 1)) == 2**25 + 1
    for size in range(1, 300):  # at most a third of the padded size is padding
        assert size <= int(bucket_size(size)) < 1.5 * size + 1


@pytest.mark.slow
@pytest.mark.parametrize("name, go_backwards", [("lstm", False), ("layer_norm_gru", True)])
def test_xla_loop_on_bucket_shapes_equals_the_plain_loop(name, go_backwards):
    layer = Recurrent(build_cell(name, 4), return_sequences=True, return_state=True,
                      go_backwards=go_backwards)
    layer.build((None, None, 3))
    randomize_weights(layer.cell, seed=8)
    xla = Recurrent.from_config({**layer.get_config(), "jit_compile": True})
    xla.build((None, None, 3))
    xla.cell.set_weights(layer.cell.get_weights())
    compiled = tf.function(lambda x, mask: xla(x, mask=mask), reduce_retracing=True)
    for batch, steps in ((1, 1), (5, 7)):  # padded to (1, 1) and (6, 8)
        x = RNG.normal(size=(batch, steps, 3)).astype("float32")
        mask = np.arange(steps)[None, :] < RNG.integers(0, steps + 1, size=(batch, 1))
        for m in (None, mask):
            expected = layer(x, mask=m)
            got = compiled(x, m)
            assert [tuple(g.shape) for g in got] == [tuple(e.shape) for e in expected]
            for g, e in zip(got, expected):
                np.testing.assert_allclose(g, e, atol=1e-5)


def test_the_xla_loop_sees_only_bucket_shapes(monkeypatch):
    seen = []
    original = buckets.pad_to_buckets

    def spy(*args):
        padded = original(*args)
        seen.append(tuple(int(n) for n in tf.shape(padded[0])[:2]))
        return padded

    monkeypatch.setattr("layers.loop.run.pad_to_buckets", spy)
    layer = Recurrent(build_cell("gru", 4), jit_compile=True)
    for steps in (5, 6, 7, 9):
        layer(RNG.normal(size=(5, steps, 3)).astype("float32"))
    assert seen == [(6, 6), (6, 6), (8, 6), (12, 6)]


@pytest.mark.slow
def test_xla_loop_and_xla_decoding_on_empty_inputs_equal_the_plain_ones():
    """No steps (a word of no characters) or no rows: XLA cannot slice an empty dimension,
    so these run as one masked step or row and come back empty, as the plain call's."""
    from layers import CRF

    layer = Recurrent(build_cell("gru", 4), return_state=True)  # as a word's character RNN
    layer.build((None, None, 3))
    randomize_weights(layer.cell, seed=9)
    xla = Recurrent.from_config({**layer.get_config(), "jit_compile": True})
    xla.build((None, None, 3))
    xla.cell.set_weights(layer.cell.get_weights())
    crf = CRF.for_tags(["O", "B-X", "I-X"], "bio", boundary_initializer="random_normal")
    crf.build((None, None, 3))
    compiled_crf = CRF.from_config({**crf.get_config(), "jit_compile": True})
    compiled_crf.build((None, None, 3))
    compiled_crf.set_weights(crf.get_weights())
    spec = [tf.TensorSpec([None, None, 3]), tf.TensorSpec([None, None], tf.bool)]  # shapes as a server sees them
    for batch, steps in ((2, 0), (0, 4), (0, 0)):
        x = RNG.normal(size=(batch, steps, 3)).astype("float32")
        mask = np.ones((batch, steps), bool)
        for got, expected in zip(tf.function(lambda x, m: xla(x, mask=m), input_signature=spec)(x, mask),
                                 tf.function(lambda x, m: layer(x, mask=m), input_signature=spec)(x, mask)):
            assert tuple(got.shape) == tuple(expected.shape)
            np.testing.assert_allclose(got, expected, atol=1e-6)
        if not steps:  # the plain Viterbi needs a step (the taggers send none)
            continue
        for got, expected in zip(tf.function(compiled_crf.decode, input_signature=spec)(x, mask),
                                 tf.function(crf.decode, input_signature=spec)(x, mask)):
            assert tuple(got.shape) == tuple(expected.shape)
            np.testing.assert_allclose(got, expected, atol=1e-5)
