"""Scheduled sampling for training recurrent decoders (Bengio et al. 2015).

During training, a decoder normally reads the ground-truth previous token (teacher
forcing); at inference it reads its own predictions. Scheduled sampling closes that gap:
at training step i each decoder input is the ground truth with probability eps_i and the
model's own previous prediction otherwise, with eps_i decaying over training
(Bengio, Vinyals, Jaitly and Shazeer 2015, "Scheduled Sampling for Sequence Prediction
with Recurrent Neural Networks").

- `scheduled_sampling_probability` gives eps_i for the linear, exponential and
  inverse-sigmoid schedules (option names as in OpenNMT-tf: `scheduled_sampling_type`,
  `scheduled_sampling_k`).
- `mix_inputs` mixes ground-truth and predicted token ids per token.
- `unroll_with_scheduled_sampling` runs a decoder step function over a target sequence,
  feeding each step the mixed input; its logits go into the usual cross-entropy loss.
- `ScheduledSamplingSettings`, mixed into a decoder model, validates and stores the five
  `scheduled_sampling_*` arguments, gives eps at the optimizer's step and the arguments
  for `get_config`; `scheduled_sampling_arguments` reads them off a model or a config.

Only `keras.ops` and `keras.random` are used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops, tree

SCHEDULED_SAMPLING_TYPES = ("constant", "linear", "exponential", "inverse_sigmoid")
PREDICTION_MODES = ("argmax", "sample")
#: The constructor arguments of a model mixing in `ScheduledSamplingSettings`.
SCHEDULED_SAMPLING_ARGUMENTS = (
    "scheduled_sampling_type", "scheduled_sampling_k", "scheduled_sampling_c",
    "scheduled_sampling_min_probability", "scheduled_sampling_prediction",
)


def _validate_schedule(schedule_type, k, c):
    if schedule_type not in SCHEDULED_SAMPLING_TYPES:
        raise ValueError(
            f"Unknown scheduled_sampling_type {schedule_type!r}; expected one of "
            f"{SCHEDULED_SAMPLING_TYPES}."
        )
    if not isinstance(k, (int, float)):
        return  # a tensor: validated by the caller
    if schedule_type == "exponential" and not 0 < k < 1:
        raise ValueError(f"The exponential schedule eps_i = k**i needs 0 < k < 1; got k={k}.")
    if schedule_type == "inverse_sigmoid" and k < 1:
        raise ValueError(
            f"The inverse sigmoid schedule eps_i = k / (k + exp(i / k)) needs k >= 1; got k={k}."
        )
    if schedule_type in ("constant", "linear") and not 0 <= k <= 1:
        raise ValueError(f"The {schedule_type} schedule needs 0 <= k <= 1; got k={k}.")
    if schedule_type == "linear" and c is None:
        raise ValueError(
            "The linear schedule eps_i = max(epsilon_min, k - c * i) needs "
            "`scheduled_sampling_c` (the decay per step)."
        )


def scheduled_sampling_probability(
    step,
    scheduled_sampling_type: str,
    scheduled_sampling_k: float,
    scheduled_sampling_c: float | None = None,
    epsilon_min: float = 0.0,
):
    """Probability eps_i of feeding the ground truth at training step i.

    Schedules (Bengio et al. 2015, section 2.4):
    - "constant":        eps_i = k
    - "linear":          eps_i = max(epsilon_min, k - c * i)   (0 <= k <= 1, c > 0)
    - "exponential":     eps_i = k ** i                        (0 < k < 1)
    - "inverse_sigmoid": eps_i = k / (k + exp(i / k))          (k >= 1)

    `epsilon_min` floors every schedule (by default 0, which changes nothing but the
    linear one). 1 - eps_i is the probability of feeding the model's own prediction
    (OpenNMT-tf's "sampling probability").

    Args:
        step: int or scalar tensor, the training step i (e.g. `optimizer.iterations`).
        scheduled_sampling_type: one of "constant", "linear", "exponential",
            "inverse_sigmoid".
        scheduled_sampling_k: float, k of the schedule.
        scheduled_sampling_c: float, slope c of the linear schedule.
        epsilon_min: float, the lowest eps. Defaults to 0.

    Returns:
        float32 scalar tensor eps_i in [epsilon_min, 1].

    Example:
    >>> float(scheduled_sampling_probability(100, "inverse_sigmoid", 100.0))
    0.9735...
    """
    _validate_schedule(scheduled_sampling_type, scheduled_sampling_k, scheduled_sampling_c)
    # Computed in float64: k**i in float32 drifts by ~1e-4 after a few thousand steps.
    step = ops.cast(step, "float64")
    k = ops.convert_to_tensor(scheduled_sampling_k, dtype="float64")
    if scheduled_sampling_type == "constant":
        epsilon = k + ops.zeros_like(step)
    elif scheduled_sampling_type == "linear":
        epsilon = k - ops.convert_to_tensor(scheduled_sampling_c, dtype="float64") * step
    elif scheduled_sampling_type == "exponential":
        epsilon = ops.power(k, step)
    else:
        epsilon = k / (k + ops.exp(step / k))
    return ops.cast(ops.clip(epsilon, epsilon_min, 1.0), "float32")


def mix_inputs(true_ids, predicted_ids, ground_truth_probability, seed=None):
    """Per token, the ground truth with probability eps, else the model's prediction.

    Args:
        true_ids: int tensor, ground-truth decoder inputs (any shape).
        predicted_ids: int tensor of the same shape, the model's previous predictions.
        ground_truth_probability: float or scalar tensor eps in [0, 1]; 1 is teacher
            forcing, 0 feeds predictions only.
        seed: `None`, an int (the same draw at every call, for tests) or a
            `keras.random.SeedGenerator` (a new draw at every call; use this in training,
            created once outside the training step).

    Returns:
        Int tensor like `true_ids`.
    """
    true_ids = ops.convert_to_tensor(true_ids)
    predicted_ids = ops.cast(predicted_ids, true_ids.dtype)
    coin = keras.random.uniform(ops.shape(true_ids), seed=seed)
    use_truth = coin < ops.cast(ground_truth_probability, coin.dtype)
    return ops.where(use_truth, true_ids, predicted_ids)


def _predict(logits, uniform, prediction):
    if prediction == "argmax":
        return ops.cast(ops.argmax(logits, axis=-1), "int32")
    # Inverse-CDF sampling with a pre-drawn uniform, so the loop needs no random ops.
    cdf = ops.cumsum(ops.softmax(ops.cast(logits, "float32"), axis=-1), axis=-1)
    index = ops.sum(ops.cast(cdf < uniform[:, None], "int32"), axis=-1)
    return ops.minimum(index, ops.shape(logits)[-1] - 1)


def unroll_with_scheduled_sampling(
    step_fn: Callable[[Any, Any], tuple[Any, Any]],
    initial_state,
    decoder_inputs,
    ground_truth_probability,
    seed=None,
    prediction: str = "argmax",
    return_state: bool = False,
):
    """Runs a decoder over a target sequence, feeding mixed true / predicted inputs.

    Step t reads the ground truth `decoder_inputs[:, t]` with probability eps and the
    model's prediction from step t-1 otherwise (step 0 always reads the ground truth,
    the start token). The prediction is the argmax of the logits or a sample from them.
    Gradients flow through the logits and states, not through the discrete choices.

    Args:
        step_fn: `(token_ids [B], state) -> (logits [B, V], new_state)`, the same
            signature as the decoders of `layers.decoding`; `state` is any nested
            structure of tensors. Keras layers it uses are built by the first step,
            which runs before the loop.
        initial_state: nested structure of tensors.
        decoder_inputs: int tensor [B, T], the ground-truth inputs (start token first).
        ground_truth_probability: eps, e.g. from `scheduled_sampling_probability`.
        seed: as in `mix_inputs`.
        prediction: "argmax" or "sample". Defaults to `"argmax"`.
        return_state: also return the state after the last step (e.g. a decoder that
            accumulates attention weights in its state, for a coverage penalty).

    Returns:
        `(logits [B, T, V], fed_ids [B, T])`: the logits to score against the target
        outputs, and the token ids actually fed; with `return_state`, the final state
        follows them.

    Example:
    >>> embedding = keras.layers.Embedding(10, 8)
    >>> cell, project = keras.layers.GRUCell(16), keras.layers.Dense(10)
    >>> def step_fn(ids, state):
    ...     output, state = cell(embedding(ids), state)
    ...     return project(output), state
    >>> targets_in = keras.random.randint((4, 6), 0, 10)
    >>> eps = scheduled_sampling_probability(1000, "linear", 1.0, 1e-4)
    >>> logits, fed = unroll_with_scheduled_sampling(
    ...     step_fn, [keras.ops.zeros((4, 16))], targets_in, eps, seed=1)
    >>> tuple(logits.shape)
    (4, 6, 10)
    """
    if prediction not in PREDICTION_MODES:
        raise ValueError(f"Unknown prediction {prediction!r}; expected one of {PREDICTION_MODES}.")
    decoder_inputs = ops.cast(decoder_inputs, "int32")
    shape = ops.shape(decoder_inputs)
    batch_size, length = shape[0], shape[1]
    inputs_tm = ops.transpose(decoder_inputs, (1, 0))
    # All randomness is drawn before the loop: [T', B, 2] = (coin, sampling uniform).
    # The loop covers steps 1..T-1 but runs at least once (a zero-length scan fails on
    # the TensorFlow backend when T is unknown); surplus outputs are sliced away.
    loop_steps = ops.maximum(length - 1, 1)
    noise = keras.random.uniform((loop_steps + 1, batch_size, 2), seed=seed)
    probability = ops.cast(ground_truth_probability, noise.dtype)

    first_logits, state = step_fn(inputs_tm[0], initial_state)
    first_prediction = _predict(first_logits, noise[0, :, 1], prediction)
    if isinstance(length, int) and length == 1:
        return (first_logits[:, None], decoder_inputs) + ((state,) if return_state else ())

    def step(carry, step_noise):
        time, step_state, _, _, previous_prediction = carry
        truth = ops.take(inputs_tm, ops.minimum(time, length - 1), axis=0)
        fed = ops.where(step_noise[:, 0] < probability, truth, previous_prediction)
        logits, new_state = step_fn(fed, step_state)
        predicted = _predict(logits, step_noise[:, 1], prediction)
        new_carry = (time + 1, new_state, logits, fed, predicted)
        # Keras' scan (TF backend) needs per-step outputs shaped like the carry.
        return new_carry, new_carry

    initial_carry = (
        ops.convert_to_tensor(1, dtype="int32"),
        state,
        first_logits,
        inputs_tm[0],
        first_prediction,
    )
    (_, final_state, _, _, _), (_, _, logits_tm, fed_tm, _) = ops.scan(
        step, initial_carry, noise[1:]
    )
    logits_tm, fed_tm = logits_tm[: length - 1], fed_tm[: length - 1]
    logits = ops.concatenate([first_logits[:, None], ops.transpose(logits_tm, (1, 0, 2))], axis=1)
    fed = ops.concatenate([inputs_tm[0][:, None], ops.transpose(fed_tm, (1, 0))], axis=1)
    if not return_state:
        return logits, fed
    # A sequence of one step ran the loop once in surplus: its state is the first step's.
    final_state = tree.map_structure(
        lambda looped, first: ops.where(length > 1, looped, first), final_state, state
    )
    return logits, fed, final_state


def scheduled_sampling_arguments(source) -> dict[str, Any]:
    """The `SCHEDULED_SAMPLING_ARGUMENTS` read off `source` (a model or an app's config)."""
    return {name: getattr(source, name) for name in SCHEDULED_SAMPLING_ARGUMENTS}


class ScheduledSamplingSettings:
    """Mixed into a decoder model trained with scheduled sampling: `set_scheduled_sampling`
    validates and stores the settings in `__init__`, `read_probability` gives eps at the
    optimizer's step and `get_config` adds `scheduled_sampling_arguments(self)`."""

    def set_scheduled_sampling(
        self,
        scheduled_sampling_type: str = "",
        scheduled_sampling_k: float = 1.0,
        scheduled_sampling_c: float = 0.0,
        scheduled_sampling_min_probability: float = 0.0,
        scheduled_sampling_prediction: str = "sample",
    ) -> None:
        """Stores the settings ('' type: teacher forcing only); a bad value raises now
        rather than at the first training step."""
        if scheduled_sampling_type not in ("", *SCHEDULED_SAMPLING_TYPES):
            raise ValueError(
                f"--scheduled-sampling-type must be '' (teacher forcing) or one of "
                f"{SCHEDULED_SAMPLING_TYPES}, got {scheduled_sampling_type!r}"
            )
        if scheduled_sampling_prediction not in PREDICTION_MODES:
            raise ValueError(
                f"--scheduled-sampling-prediction must be one of {PREDICTION_MODES}, "
                f"got {scheduled_sampling_prediction!r}"
            )
        self.scheduled_sampling_type = scheduled_sampling_type
        self.scheduled_sampling_k = float(scheduled_sampling_k)
        self.scheduled_sampling_c = float(scheduled_sampling_c)
        self.scheduled_sampling_min_probability = float(scheduled_sampling_min_probability)
        self.scheduled_sampling_prediction = scheduled_sampling_prediction
        if scheduled_sampling_type:
            self.read_probability()

    def read_probability(self):
        """eps_i: the probability of reading the reference token at the optimizer's step
        (step 0 before the model is compiled)."""
        optimizer = getattr(self, "optimizer", None)
        return scheduled_sampling_probability(
            optimizer.iterations if optimizer is not None else 0,
            self.scheduled_sampling_type,
            self.scheduled_sampling_k,
            self.scheduled_sampling_c or None,
            self.scheduled_sampling_min_probability,
        )
