"""Decoding over any step function: greedy search, batched beam search and sampling.

A step function maps the previous tokens and a decoder state to next-token logits:

    step_fn(token_ids [B], state) -> (logits [B, V], new_state)

where `state` is any nested structure (tuples, lists, dicts) of tensors whose first
dimension is the batch. Every decoder here returns fixed-size padded tensors plus
lengths, and runs eagerly or inside `tf.function`, so it can be part of an exported
SavedModel's serving function.

TensorFlow-only module. Unlike the rest of `layers/`, this file uses TensorFlow
directly: the decoding loops need `tf.while_loop` with shape invariants (the batch of
hypotheses keeps its size while states are reordered by beam), `tf.nest` over
arbitrary state structures and stateless sampling ops, none of which `keras.ops` offers
in a form that exports to a SavedModel.

The first step is run before the loop, so Keras layers used by `step_fn` are built
outside `tf.while_loop` (creating variables inside a graph loop is an error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import tensorflow as tf

# Log-probability of impossible hypotheses. Finite, so that sums and ratios never make NaN.
IMPOSSIBLE_LOG_PROB = -1e9

LENGTH_NORMALIZATIONS = ("none", "average", "gnmt")

StepFunction = Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]]


class DecodeResult(NamedTuple):
    """Output of `greedy_decode` and `sample_decode`.

    Attributes:
        sequences: int32 [B, max_length]; emitted tokens, the end token included when
            emitted, then `padding_token`. The start token is not included.
        scores: float32 [B]; sum of the model's log-probabilities of the emitted tokens
            (before temperature and top-k).
        lengths: int32 [B]; number of emitted tokens, the end token included.
    """

    sequences: tf.Tensor
    scores: tf.Tensor
    lengths: tf.Tensor


class BeamSearchResult(NamedTuple):
    """Output of `beam_search_decode`, best hypothesis first.

    Attributes:
        sequences: int32 [B, beam_width, max_length], padded as in `DecodeResult`.
        scores: float32 [B, beam_width]; length-normalised scores, sorted descending.
        lengths: int32 [B, beam_width]; lengths, the end token included.
        log_probs: float32 [B, beam_width]; unnormalised sums of log-probabilities.
    """

    sequences: tf.Tensor
    scores: tf.Tensor
    lengths: tf.Tensor
    log_probs: tf.Tensor


def tile_to_beam(nested: Any, beam_width: int) -> Any:
    """Repeats every tensor of a nested structure `beam_width` times along the batch.

    [B, ...] -> [B * beam_width, ...], each batch entry's copies adjacent, the layout
    `beam_search_decode` uses for states. Use it on encoder memories that `step_fn`
    closes over.
    """
    return tf.nest.map_structure(
        lambda tensor: tf.repeat(tf.convert_to_tensor(tensor), beam_width, axis=0), nested
    )


def length_normalized_scores(
    log_probs: tf.Tensor,
    lengths: tf.Tensor,
    length_normalization: str = "gnmt",
    length_penalty: float = 0.0,
) -> tf.Tensor:
    """Hypothesis scores used to rank beams.

    - "none": log p(Y).
    - "average": log p(Y) / |Y|.
    - "gnmt": log p(Y) / lp(Y) with lp(Y) = ((5 + |Y|) / 6) ** length_penalty (Wu et al.
      2016, "Google's Neural Machine Translation System"); `length_penalty=0` is "none".
    """
    lengths = tf.cast(tf.maximum(lengths, 1), log_probs.dtype)
    if length_normalization == "none":
        return log_probs
    if length_normalization == "average":
        return log_probs / lengths
    if length_normalization == "gnmt":
        return log_probs / tf.pow((5.0 + lengths) / 6.0, length_penalty)
    raise ValueError(
        f"Unknown length_normalization {length_normalization!r}; expected one of "
        f"{LENGTH_NORMALIZATIONS}."
    )


def _check_max_length(max_length):
    """A positive Python int, or a scalar integer tensor (e.g. a serving-signature input:
    the output then has a dynamic time dimension)."""
    if tf.is_tensor(max_length):
        if not max_length.dtype.is_integer or max_length.shape.rank not in (None, 0):
            raise ValueError(f"`max_length` must be a scalar integer tensor; got {max_length!r}.")
        return tf.cast(max_length, tf.int32)
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"`max_length` must be a positive Python int; got {max_length!r}.")
    return max_length


def _batch_invariant(tensor: tf.Tensor) -> tf.TensorShape:
    if tensor.shape.rank is None or tensor.shape.rank == 0:
        return tensor.shape
    return tf.TensorShape([None]).concatenate(tensor.shape[1:])


def _prepare_state(state):
    return tf.nest.map_structure(tf.convert_to_tensor, state)


def _run_loop(body, loop_vars, max_length: int, finished_index: int):
    """Runs `body` once (building any Keras layers), then in a `tf.while_loop`.

    Stops after `max_length` steps or when every hypothesis has finished. `loop_vars[0]`
    is the step counter; `loop_vars[finished_index]` the finished flags.
    """
    loop_vars = body(*loop_vars)

    def cond(step, *rest):
        finished = rest[finished_index - 1]
        return tf.logical_and(step < max_length, tf.logical_not(tf.reduce_all(finished)))

    invariants = tf.nest.map_structure(_batch_invariant, loop_vars)
    invariants = (tf.TensorShape([]),) + tuple(invariants[1:])
    return tf.while_loop(cond, body, loop_vars, shape_invariants=invariants)


def _sequential_decode(
    step_fn: StepFunction,
    initial_state,
    start_tokens,
    end_token: int,
    max_length: int,
    choose: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    padding_token: int,
) -> DecodeResult:
    max_length = _check_max_length(max_length)
    start_tokens = tf.cast(tf.convert_to_tensor(start_tokens), tf.int32)
    batch_size = tf.shape(start_tokens)[0]
    time_index = tf.range(max_length)

    def body(step, tokens, state, finished, lengths, scores, sequences):
        logits, next_state = step_fn(tokens, state)
        logits = tf.cast(logits, tf.float32)
        log_probs = tf.nn.log_softmax(logits)
        chosen = tf.cast(choose(logits, step), tf.int32)
        chosen_log_prob = tf.gather(log_probs, chosen, batch_dims=1)
        emitted = tf.where(finished, padding_token, chosen)
        scores = scores + tf.where(finished, 0.0, chosen_log_prob)
        lengths = lengths + tf.cast(tf.logical_not(finished), tf.int32)
        sequences = tf.where(tf.equal(time_index, step)[None, :], emitted[:, None], sequences)
        finished = tf.logical_or(finished, tf.equal(emitted, end_token))
        # The model is fed its choice even after the end (only valid ids, never padding).
        return step + 1, chosen, next_state, finished, lengths, scores, sequences

    loop_vars = (
        tf.constant(0),
        start_tokens,
        _prepare_state(initial_state),
        tf.zeros([batch_size], tf.bool),
        tf.zeros([batch_size], tf.int32),
        tf.zeros([batch_size], tf.float32),
        tf.fill([batch_size, max_length], tf.constant(padding_token, tf.int32)),
    )
    _, _, _, _, lengths, scores, sequences = _run_loop(body, loop_vars, max_length, 3)
    return DecodeResult(sequences, scores, lengths)


def greedy_decode(
    step_fn: StepFunction,
    initial_state,
    start_tokens,
    end_token: int,
    max_length: int,
    padding_token: int = 0,
) -> DecodeResult:
    """Greedy search: feeds back the most probable token at every step.

    Args:
        step_fn: `(token_ids [B], state) -> (logits [B, V], new_state)`.
        initial_state: nested structure of tensors, batch first.
        start_tokens: int tensor [B], the first inputs.
        end_token: int; a sequence ends once it emits it.
        max_length: int or scalar int tensor (>= 1), the most tokens emitted.
        padding_token: int written to the output after the end (`step_fn` is not fed it:
            a finished sequence keeps being fed its own choices). Defaults to 0.

    Returns:
        A `DecodeResult(sequences [B, max_length], scores [B], lengths [B])`.

    Example:
    >>> table = tf.math.log(tf.constant([[.1, .6, .3], [.8, .1, .1], [.2, .2, .6]]))
    >>> step_fn = lambda ids, state: (tf.gather(table, ids), state)
    >>> greedy_decode(step_fn, (), tf.constant([2]), end_token=0, max_length=4).sequences
    <tf.Tensor: shape=(1, 4), dtype=int32, numpy=array([[2, 2, 2, 2]], dtype=int32)>
    """
    return _sequential_decode(
        step_fn,
        initial_state,
        start_tokens,
        end_token,
        max_length,
        lambda logits, step: tf.argmax(logits, axis=-1, output_type=tf.int32),
        padding_token,
    )


def _filter_top_k(logits: tf.Tensor, top_k) -> tf.Tensor:
    kth_largest = tf.math.top_k(logits, k=top_k).values[:, -1:]
    return tf.where(logits < kth_largest, tf.constant(IMPOSSIBLE_LOG_PROB, logits.dtype), logits)


def sample_logits(
    logits, temperature=1.0, top_k=None, seed: int | None = None, step=0
) -> tf.Tensor:
    """Draws one token per row from softmax(logits / temperature), optionally among the
    `top_k` most probable: the choice `sample_decode` makes at every step, for callers
    that run their own loop (e.g. streaming one token at a time).

    `temperature` and `top_k` may be Python numbers or scalar tensors (inputs of a
    serving signature). `temperature=0` (or `top_k=1`) is the argmax; a tensor `top_k`
    <= 0 means no top-k filtering. With an int `seed` the draw is stateless, from the
    seed pair (seed, step); with `None` it uses TensorFlow's stateful random ops.

    Args:
        logits: float [B, V].
        temperature: float >= 0.
        top_k: int, scalar int tensor or `None`; `None` or <= 0 keeps all tokens.
        seed: int or `None`.
        step: int or scalar int tensor, mixed into a stateless seed.

    Returns:
        int32 [B].
    """
    logits = tf.cast(tf.convert_to_tensor(logits), tf.float32)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    dynamic = tf.is_tensor(temperature) or tf.is_tensor(top_k)
    if not dynamic and (temperature == 0 or top_k == 1):
        return greedy
    temperature_tensor = tf.cast(temperature, tf.float32)
    # The floor keeps a zero tensor temperature finite; its draw is then replaced by greedy.
    scaled = logits / tf.maximum(temperature_tensor, 1e-6)
    if tf.is_tensor(top_k):
        k = tf.clip_by_value(tf.cast(top_k, tf.int32), 1, tf.shape(logits)[-1])
        scaled = tf.where(top_k > 0, _filter_top_k(scaled, k), scaled)
    elif top_k is not None and top_k > 0:
        scaled = _filter_top_k(scaled, min(top_k, logits.shape[-1] or top_k))
    if seed is None:
        sampled = tf.random.categorical(scaled, 1, dtype=tf.int32)[:, 0]
    else:
        step_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
        sampled = tf.random.stateless_categorical(scaled, 1, seed=step_seed, dtype=tf.int32)[:, 0]
    if dynamic:
        return tf.where(temperature_tensor > 0, sampled, greedy)
    return sampled


def sample_decode(
    step_fn: StepFunction,
    initial_state,
    start_tokens,
    end_token: int,
    max_length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    padding_token: int = 0,
) -> DecodeResult:
    """Random sampling from softmax(logits / temperature), optionally among the top k.

    `temperature=0` (or `top_k=1`) is greedy search. With an int `seed`, draws are
    stateless and reproducible (step t uses the seed pair (seed, t)); with `None` they use
    TensorFlow's stateful random ops, which differ at every call. Each draw is
    `sample_logits`.

    Args:
        step_fn, initial_state, start_tokens, end_token, padding_token: as in
            `greedy_decode`.
        max_length: Python int, or a scalar int tensor (the number of tokens as an input
            of a serving signature).
        temperature: float >= 0, or a scalar float tensor. Defaults to 1.0.
        top_k: int, scalar int tensor (<= 0: no top-k) or `None`; sample only among the
            k most probable tokens.
        seed: int or `None`.

    Returns:
        A `DecodeResult`; its scores are the model's log-probabilities (temperature 1,
        no top-k) of the sampled tokens.
    """
    if not tf.is_tensor(temperature) and temperature < 0:
        raise ValueError(f"`temperature` must be >= 0; got {temperature}.")
    if top_k is not None and not tf.is_tensor(top_k) and top_k < 1:
        raise ValueError(f"`top_k` must be a positive int or None; got {top_k}.")

    def choose(logits, step):
        return sample_logits(logits, temperature, top_k, seed, step)

    return _sequential_decode(
        step_fn, initial_state, start_tokens, end_token, max_length, choose, padding_token
    )


def beam_search_decode(
    step_fn: StepFunction,
    initial_state,
    start_tokens,
    end_token: int,
    max_length: int,
    beam_width: int,
    length_penalty: float = 0.0,
    length_normalization: str = "gnmt",
    padding_token: int = 0,
) -> BeamSearchResult:
    """Batched beam search with length normalisation.

    Keeps the `beam_width` best hypotheses of every batch entry. At each step every live
    hypothesis is extended by every token; the candidates are ranked by their
    length-normalised score (`length_normalized_scores`) and the best `beam_width`
    kept. States are tiled to [B * beam_width, ...] once and reordered by parent beam at
    every step. A hypothesis that emitted `end_token` is finished: it keeps its
    log-probability, its length stops growing, and it emits `padding_token` (while
    `step_fn` is fed `end_token` for it, so it only ever sees valid ids). Decoding
    stops when all hypotheses have finished or after `max_length` steps.

    Args:
        step_fn: `(token_ids [N], state) -> (logits [N, V], new_state)`, called with
            N = B * beam_width.
        initial_state: nested structure of tensors with batch B first; tiled here. Tensors
            that `step_fn` closes over (an encoder memory) must be tiled by the caller
            with `tile_to_beam`.
        start_tokens: int tensor [B].
        end_token: int.
        max_length: int or scalar int tensor (>= 1), the most tokens per hypothesis.
        beam_width: Python int.
        length_penalty: float, alpha of the "gnmt" normalisation. Defaults to 0.0.
        length_normalization: "none", "average" or "gnmt". Defaults to `"gnmt"`.
        padding_token: int. Defaults to 0.

    Returns:
        A `BeamSearchResult(sequences [B, beam, max_length], scores [B, beam],
        lengths [B, beam], log_probs [B, beam])`, best first. When fewer than
        `beam_width` hypotheses exist, the rest have scores near -1e9.

    Example:
    >>> table = tf.math.log(tf.constant([[.1, .6, .3], [.8, .1, .1], [.2, .2, .6]]))
    >>> step_fn = lambda ids, state: (tf.gather(table, ids), state)
    >>> result = beam_search_decode(step_fn, (), tf.constant([2]), end_token=0,
    ...                             max_length=4, beam_width=3, padding_token=-1)
    >>> result.sequences[0].numpy()
    array([[ 0, -1, -1, -1],
           [ 1,  0, -1, -1],
           [ 2,  2,  2,  2]], dtype=int32)
    >>> result.lengths.numpy()
    array([[1, 2, 4]], dtype=int32)
    """
    max_length = _check_max_length(max_length)
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"`beam_width` must be a positive Python int; got {beam_width!r}.")
    if length_normalization not in LENGTH_NORMALIZATIONS:
        raise ValueError(
            f"Unknown length_normalization {length_normalization!r}; expected one of "
            f"{LENGTH_NORMALIZATIONS}."
        )
    start_tokens = tf.cast(tf.convert_to_tensor(start_tokens), tf.int32)
    batch_size = tf.shape(start_tokens)[0]
    time_index = tf.range(max_length)
    batch_offsets = tf.range(batch_size)[:, None] * beam_width

    def normalize(log_probs, lengths):
        return length_normalized_scores(log_probs, lengths, length_normalization, length_penalty)

    def body(step, tokens, state, log_probs, finished, lengths, sequences):
        logits, next_state = step_fn(tokens, state)
        step_log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        vocab_size = tf.shape(step_log_probs)[-1]
        step_log_probs = tf.reshape(step_log_probs, [batch_size, beam_width, vocab_size])
        # A finished hypothesis has one continuation (at the end token's index), free.
        finished_row = tf.where(tf.range(vocab_size) == end_token, 0.0, IMPOSSIBLE_LOG_PROB)
        step_log_probs = tf.where(finished[..., None], finished_row, step_log_probs)
        candidate_log_probs = tf.reshape(log_probs[..., None] + step_log_probs, [batch_size, -1])
        candidate_lengths = lengths + tf.cast(tf.logical_not(finished), tf.int32)
        candidate_scores = normalize(
            candidate_log_probs, tf.repeat(candidate_lengths, vocab_size, axis=1)
        )
        _, flat_index = tf.math.top_k(candidate_scores, k=beam_width)
        parent = flat_index // vocab_size
        token = flat_index % vocab_size

        log_probs = tf.gather(candidate_log_probs, flat_index, batch_dims=1)
        parent_finished = tf.gather(finished, parent, batch_dims=1)
        lengths = tf.gather(candidate_lengths, parent, batch_dims=1)
        emitted = tf.where(parent_finished, padding_token, token)
        finished = tf.logical_or(parent_finished, tf.equal(token, end_token))
        sequences = tf.gather(sequences, parent, batch_dims=1)
        sequences = tf.where(
            tf.equal(time_index, step)[None, None, :], emitted[..., None], sequences
        )
        flat_parent = tf.reshape(parent + batch_offsets, [-1])
        next_state = tf.nest.map_structure(lambda s: tf.gather(s, flat_parent), next_state)
        return (
            step + 1,
            tf.reshape(token, [-1]),  # finished hypotheses are fed the end token
            next_state,
            log_probs,
            finished,
            lengths,
            sequences,
        )

    # Only beam 0 is live at the start, so the first step does not pick duplicates.
    first_log_probs = tf.constant([[0.0] + [IMPOSSIBLE_LOG_PROB] * (beam_width - 1)])
    loop_vars = (
        tf.constant(0),
        tf.repeat(start_tokens, beam_width),
        tile_to_beam(_prepare_state(initial_state), beam_width),
        tf.tile(first_log_probs, [batch_size, 1]),
        tf.zeros([batch_size, beam_width], tf.bool),
        tf.zeros([batch_size, beam_width], tf.int32),
        tf.fill([batch_size, beam_width, max_length], tf.constant(padding_token, tf.int32)),
    )
    _, _, _, log_probs, _, lengths, sequences = _run_loop(body, loop_vars, max_length, 4)
    scores = normalize(log_probs, lengths)
    scores, order = tf.math.top_k(scores, k=beam_width)
    return BeamSearchResult(
        sequences=tf.gather(sequences, order, batch_dims=1),
        scores=scores,
        lengths=tf.gather(lengths, order, batch_dims=1),
        log_probs=tf.gather(log_probs, order, batch_dims=1),
    )
