"""Tests of layers/scheduled_sampling.py: the schedules of Bengio et al. 2015 exactly, the
mixing ratio, and the decoder unroll at eps = 1 (teacher forcing) and eps = 0."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.scheduled_sampling import (
    SCHEDULED_SAMPLING_ARGUMENTS,
    ScheduledSamplingSettings,
    mix_inputs,
    scheduled_sampling_arguments,
    scheduled_sampling_probability,
    unroll_with_scheduled_sampling,
)

STEPS = np.array([0, 1, 10, 100, 1000, 5000, 100000])


@pytest.mark.parametrize(
    "schedule, k, c, epsilon_min, expected",
    [
        ("constant", 0.75, None, 0.0, np.full(len(STEPS), 0.75)),
        ("linear", 1.0, 1e-3, 0.1, np.maximum(0.1, 1.0 - 1e-3 * STEPS)),
        ("linear", 0.9, 2e-4, 0.0, np.maximum(0.0, 0.9 - 2e-4 * STEPS)),
        ("exponential", 0.999, None, 0.0, 0.999**STEPS),
        ("inverse_sigmoid", 500.0, None, 0.0, 500.0 / (500.0 + np.exp(STEPS / 500.0))),
    ],
)
def test_schedules_follow_their_formulas(schedule, k, c, epsilon_min, expected):
    actual = [
        float(scheduled_sampling_probability(step, schedule, k, c, epsilon_min)) for step in STEPS
    ]
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-7)
    # A tensor step (e.g. optimizer.iterations) gives the same values.
    as_tensor = scheduled_sampling_probability(tf.constant(STEPS), schedule, k, c, epsilon_min)
    np.testing.assert_allclose(as_tensor, expected, rtol=1e-5, atol=1e-7)


def test_schedule_arguments_are_validated():
    with pytest.raises(ValueError, match="Unknown scheduled_sampling_type"):
        scheduled_sampling_probability(0, "cosine", 0.5)
    with pytest.raises(ValueError, match="0 < k < 1"):
        scheduled_sampling_probability(0, "exponential", 1.5)
    with pytest.raises(ValueError, match="k >= 1"):
        scheduled_sampling_probability(0, "inverse_sigmoid", 0.5)
    with pytest.raises(ValueError, match="scheduled_sampling_c"):
        scheduled_sampling_probability(0, "linear", 1.0)


@pytest.mark.parametrize("epsilon", [0.0, 0.3, 0.8, 1.0])
def test_mixing_ratio_follows_the_probability(epsilon):
    true_ids = np.zeros((200, 500), np.int32)
    predicted_ids = np.ones((200, 500), np.int32)
    mixed = np.asarray(mix_inputs(true_ids, predicted_ids, epsilon, seed=int(epsilon * 10) + 1))
    truth_fraction = (mixed == 0).mean()
    if epsilon in (0.0, 1.0):
        assert truth_fraction == epsilon  # pure predictions / pure teacher forcing
    else:
        assert abs(truth_fraction - epsilon) < 0.01


def _decoder(vocabulary=9, seed=0):
    keras.utils.set_random_seed(seed)
    embedding = keras.layers.Embedding(vocabulary, 4)
    cell = keras.layers.GRUCell(8)
    project = keras.layers.Dense(vocabulary)

    def step_fn(ids, state):
        output, new_state = cell(embedding(ids), state["h"])
        return project(output), {"h": new_state}

    return step_fn, {"h": [tf.zeros((5, 8))]}, (embedding, cell, project)


def _teacher_forced(step_fn, state, inputs):
    logits = []
    for t in range(inputs.shape[1]):
        step_logits, state = step_fn(tf.constant(inputs[:, t]), state)
        logits.append(np.asarray(step_logits))
    return np.stack(logits, axis=1)


def test_probability_one_is_teacher_forcing():
    step_fn, state, _ = _decoder()
    inputs = np.random.default_rng(0).integers(0, 9, size=(5, 6)).astype("int32")
    logits, fed = unroll_with_scheduled_sampling(step_fn, state, inputs, 1.0, seed=3)
    np.testing.assert_array_equal(fed, inputs)
    np.testing.assert_allclose(logits, _teacher_forced(step_fn, state, inputs), atol=1e-5)


@pytest.mark.parametrize("prediction", ["argmax", "sample"])
def test_probability_zero_feeds_the_model_predictions(prediction):
    step_fn, state, _ = _decoder(seed=1)
    inputs = np.random.default_rng(1).integers(0, 9, size=(5, 6)).astype("int32")
    logits, fed = unroll_with_scheduled_sampling(
        step_fn, state, inputs, 0.0, seed=4, prediction=prediction
    )
    logits, fed = np.asarray(logits), np.asarray(fed)
    assert logits.shape == (5, 6, 9)
    np.testing.assert_array_equal(fed[:, 0], inputs[:, 0])  # the start token
    # The logits are what the decoder gives when fed its own choices.
    np.testing.assert_allclose(logits, _teacher_forced(step_fn, state, fed), atol=1e-5)
    if prediction == "argmax":
        np.testing.assert_array_equal(fed[:, 1:], logits[:, :-1].argmax(-1))


def test_unroll_mixes_in_graph_mode_with_a_seed_generator_and_passes_gradients():
    step_fn, state, (embedding, cell, project) = _decoder(seed=2)
    inputs = np.random.default_rng(2).integers(0, 9, size=(5, 40)).astype("int32")
    step_fn(tf.constant(inputs[:, 0]), state)  # build the layers
    seed_generator = keras.random.SeedGenerator(7)
    variables = embedding.trainable_weights + cell.trainable_weights + project.trainable_weights

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([])])
    def train_step(inputs, epsilon):
        with tf.GradientTape() as tape:
            logits, fed = unroll_with_scheduled_sampling(
                step_fn, state, inputs, epsilon, seed=seed_generator, prediction="sample"
            )
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(inputs[:, 1:], logits[:, :-1])
            )
        return fed, tape.gradient(loss, variables)

    fed_1, gradients = train_step(inputs, 0.5)
    fed_2, _ = train_step(inputs, 0.5)
    assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in gradients)
    assert not np.array_equal(fed_1, fed_2)  # a new draw at every call
    matches_truth = (np.asarray(fed_1) == inputs)[:, 1:].mean()
    assert 0.4 <= matches_truth < 0.75  # ~0.5 truth, plus predictions that happen to match
    short, _ = train_step(inputs[:, :1], 0.5)  # a one-step sequence of unknown length
    np.testing.assert_array_equal(short, inputs[:, :1])


@pytest.mark.parametrize("length", [1, 4])
def test_return_state_gives_the_state_after_the_last_step(length):
    """A step function that counts the tokens it reads in its state: the final state is
    the sum of the fed ids, in eager mode and in a graph with unknown length."""

    def step_fn(token_ids, state):
        logits = keras.ops.one_hot(token_ids, 6) * 10.0
        return logits, [state[0] + keras.ops.cast(token_ids, "float32")]

    inputs = np.arange(1, 1 + 2 * length, dtype=np.int32).reshape(2, length) % 6
    logits, fed, final = unroll_with_scheduled_sampling(
        step_fn, [np.zeros(2, np.float32)], inputs, 1.0, return_state=True
    )
    np.testing.assert_array_equal(fed, inputs)
    np.testing.assert_allclose(final[0], inputs.sum(axis=1))

    @tf.function(input_signature=[tf.TensorSpec([2, None], tf.int32)])
    def unrolled(ids):
        return unroll_with_scheduled_sampling(step_fn, [tf.zeros(2)], ids, 1.0, return_state=True)[2]

    np.testing.assert_allclose(unrolled(tf.constant(inputs))[0], inputs.sum(axis=1))


def test_settings_mixin_validates_reads_the_optimizer_step_and_round_trips():
    """A model mixing in ScheduledSamplingSettings: bad settings raise at construction,
    eps follows the optimizer's step, and its config holds the five arguments."""

    class Decoder(ScheduledSamplingSettings, keras.Model):
        def __init__(self, **kwargs):
            settings = {name: kwargs.pop(name) for name in SCHEDULED_SAMPLING_ARGUMENTS if name in kwargs}
            super().__init__(**kwargs)
            self.set_scheduled_sampling(**settings)

        def get_config(self):
            return {**super().get_config(), **scheduled_sampling_arguments(self)}

    with pytest.raises(ValueError, match="scheduled-sampling-type"):
        Decoder(scheduled_sampling_type="cosine")
    with pytest.raises(ValueError, match="scheduled-sampling-prediction"):
        Decoder(scheduled_sampling_prediction="beam")
    with pytest.raises(ValueError, match="0 < k < 1"):
        Decoder(scheduled_sampling_type="exponential", scheduled_sampling_k=2.0)
    decoder = Decoder(scheduled_sampling_type="linear", scheduled_sampling_k=1.0,
                      scheduled_sampling_c=0.1, scheduled_sampling_min_probability=0.2)
    assert float(decoder.read_probability()) == pytest.approx(1.0)  # no optimizer yet: step 0
    decoder.optimizer = keras.optimizers.SGD()
    decoder.optimizer.iterations.assign(3)
    assert float(decoder.read_probability()) == pytest.approx(0.7)
    decoder.optimizer.iterations.assign(30)
    assert float(decoder.read_probability()) == pytest.approx(0.2)
    config = decoder.get_config()
    assert {name: config[name] for name in SCHEDULED_SAMPLING_ARGUMENTS} == {
        "scheduled_sampling_type": "linear", "scheduled_sampling_k": 1.0,
        "scheduled_sampling_c": 0.1, "scheduled_sampling_min_probability": 0.2,
        "scheduled_sampling_prediction": "sample",
    }
