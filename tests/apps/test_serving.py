"""The shared serving levers: rows grouped by length give the results of the whole batch,
in its order; XLA loops switched on while a serving function is traced, then off again."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import layers
from apps.common.cli import build_parser, export_arguments
from apps.common.serving import ServingOptions, by_length, serving_options, xla_loops

RNG = np.random.default_rng(7)


def _row_sums_and_widths(inputs):
    """Per row: the sum of its ids, and the width of the group it was run in."""
    ids = inputs["ids"]
    widths = tf.fill([tf.shape(ids)[0]], tf.shape(ids)[1])
    return {"sums": tf.reduce_sum(ids, axis=1), "widths": widths, "first": ids[:, :1]}


SIGNATURE = {"sums": tf.TensorSpec([], tf.int32), "widths": tf.TensorSpec([], tf.int32),
             "first": tf.TensorSpec([1], tf.int32)}  # fmt: skip


def _request(lengths):
    ids = np.zeros((len(lengths), max(lengths, default=1) or 1), np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = RNG.integers(1, 50, length)
    return ids


def test_groups_run_cut_to_their_longest_row_and_come_back_in_order():
    lengths = [3, 40, 1, 0, 17, 2, 70, 5, 33]
    ids = _request(lengths)
    grouped = tf.function(lambda ids, lengths: by_length(_row_sums_and_widths, {"ids": ids}, lengths, SIGNATURE))
    outputs = {key: value.numpy() for key, value in grouped(ids, np.array(lengths)).items()}
    np.testing.assert_array_equal(outputs["sums"], ids.sum(axis=1))
    np.testing.assert_array_equal(outputs["first"][:, 0], ids[:, 0])
    # Groups <= 32, 33-64, 65-128: each as wide as its longest row.
    assert outputs["widths"].tolist() == [17, 40, 17, 17, 17, 17, 70, 17, 40]
    assert outputs["sums"].shape == (9,) and outputs["first"].shape == (9, 1)


def test_padded_groups_meet_only_bucket_shapes():
    lengths = [3, 40, 1, 17, 5, 100]
    ids = _request(lengths)
    seen = []

    def spy(inputs):
        seen.append(tf.shape(inputs["ids"]))
        return _row_sums_and_widths(inputs)

    outputs = by_length(spy, {"ids": tf.constant(ids)}, tf.constant(lengths), SIGNATURE, pad_to_buckets=True)
    np.testing.assert_array_equal(outputs["sums"], ids.sum(axis=1))
    # Groups <= 32 (4 rows, 17 steps), 33-64 (1, 40), 65-128 (1, 100) padded to buckets.
    assert outputs["widths"].numpy().tolist() == [24, 48, 24, 24, 24, 128]
    assert [tuple(shape.numpy()) for shape in seen] == [(4, 24), (1, 48), (1, 128)]


def test_an_empty_request_and_ragged_inputs():
    ragged = tf.ragged.constant([[1, 2, 3], [4], [5, 6]])

    def fn(inputs):
        return {"sums": tf.reduce_sum(inputs["tokens"], axis=1)}

    spec = {"sums": tf.TensorSpec([], tf.int32)}
    got = by_length(fn, {"tokens": ragged}, ragged.row_lengths(), spec)["sums"]
    assert got.numpy().tolist() == [6, 4, 11]
    empty = by_length(fn, {"tokens": ragged[:0]}, ragged.row_lengths()[:0], spec)["sums"]
    assert empty.shape == (0,)


def test_xla_loops_compile_the_model_loops_only_while_traced():
    inputs = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(20, 4, mask_zero=True)(inputs)
    hidden = layers.Bidirectional(layers.Recurrent(layers.build_cell("gru", 3)))(hidden)
    model = keras.Model(inputs, hidden)
    recurrent = [layer for layer in model._flatten_layers() if isinstance(layer, layers.Recurrent)]
    assert len(recurrent) == 2
    ids = RNG.integers(0, 20, (3, 7)).astype("int32")
    with xla_loops(model):
        assert all(layer.jit_compile for layer in recurrent)
        compiled = tf.function(lambda ids: model(ids))(ids)
    assert not any(layer.jit_compile for layer in recurrent)
    np.testing.assert_allclose(compiled, model(ids), atol=1e-5)
    with xla_loops(model, enabled=False):
        assert not any(layer.jit_compile for layer in recurrent)


def test_export_takes_xla_true_by_default_and_false_for_plain_tensorflow():
    import argparse

    parser = argparse.ArgumentParser()
    export_arguments(parser)
    assert serving_options(parser.parse_args([])) == ServingOptions(xla=True, group_by_length=True)
    assert serving_options(parser.parse_args(["--xla", "false"])).xla is False
    assert ServingOptions.plain() == ServingOptions(xla=False, group_by_length=False)
    import importlib

    configs = {"sentiment": "SentimentConfig", "tagging": "TaggingConfig", "translation": "TranslationConfig",
               "language_model": "LanguageModelConfig", "captioning": "CaptioningConfig"}  # fmt: skip
    for app, name in configs.items():  # every app's export takes the same option
        commands = importlib.import_module(f"apps.{app}.__main__").COMMANDS
        config_cls = getattr(importlib.import_module(f"apps.{app}.config"), name)
        app_parser = build_parser(app, config_cls, commands)
        assert app_parser.parse_args(["export", "--run-dir", "r", "--xla", "false"]).xla == "false", app
