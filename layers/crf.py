"""Linear-chain conditional random field (CRF) for sequence tagging.

Holds the functional core (sequence score, log-partition by the forward algorithm,
log-likelihood, Viterbi decoding, posterior marginals by forward-backward and posterior
decoding), the `CRF` layer that owns the transition weights,
the `CRFTagger` model wrapper that trains any potentials-producing model with the CRF
negative log-likelihood through `model.fit`, and `allowed_transitions`, which builds
transition constraints for the IO / BIO / IOB1 / BIOES tagging schemes.

Only `keras.ops` is used, so everything here runs on any Keras backend and inside
`tf.function` / SavedModel exports on TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

# Score given to a forbidden transition. Large enough that exp() underflows to exactly 0 in
# float32, small enough that sums of a few of them stay finite (no inf - inf = NaN).
FORBIDDEN_TRANSITION_SCORE = -1e4

TAGGING_SCHEMES = ("io", "bio", "iob1", "bioes")


# --------------------------------------------------------------------------------------------
# Functional core.
# --------------------------------------------------------------------------------------------


def _sequence_mask(potentials, mask):
    """Returns a bool mask [B, T], all True when `mask` is None."""
    if mask is None:
        return ops.ones(ops.shape(potentials)[:2], dtype="bool")
    return ops.cast(mask, "bool")


def _boundary(boundary_transitions, potentials):
    if boundary_transitions is None:
        return ops.zeros((ops.shape(potentials)[-1],), dtype=potentials.dtype)
    return ops.cast(boundary_transitions, potentials.dtype)


def _prepared(potentials, transitions, mask, start_transitions, end_transitions):
    """Potentials as a tensor, a bool mask, and transitions / start / end in its dtype."""
    potentials = ops.convert_to_tensor(potentials)
    return (
        potentials,
        _sequence_mask(potentials, mask),
        ops.cast(transitions, potentials.dtype),
        _boundary(start_transitions, potentials),
        _boundary(end_transitions, potentials),
    )


def _time_major_steps(potentials, mask):
    """Packs potentials, mask and a first-step flag into one time-major tensor [T, B, K+2].

    `keras.ops.scan` on the TensorFlow backend (Keras 3.15) fails on several sequences
    of unknown length, so the per-step inputs travel as one tensor.
    """
    float_mask = ops.cast(mask, potentials.dtype)
    first = ops.cast(ops.arange(ops.shape(potentials)[1]) == 0, potentials.dtype)
    first = ops.zeros_like(float_mask) + first[None, :]
    packed = ops.concatenate([potentials, float_mask[..., None], first[..., None]], axis=-1)
    return ops.transpose(packed, (1, 0, 2))


def _unpack_step(packed):
    return packed[:, :-2], packed[:, -2] > 0.5, (packed[:, -1] > 0.5)[:, None]


def crf_sequence_score(
    potentials,
    tags,
    transitions,
    mask=None,
    start_transitions=None,
    end_transitions=None,
):
    """Unnormalised score of given tag paths.

    score(y) = start[y_1] + sum_t u_t[y_t] + sum_{t>1} A[y_{t-1}, y_t] + end[y_n]

    Args:
        potentials: float tensor [B, T, K], unary potentials u_t.
        tags: int tensor [B, T], the tag paths; values at padded steps are ignored.
        transitions: float tensor [K, K]; `transitions[i, j]` scores tag i followed by j.
        mask: optional bool tensor [B, T], right-padded (valid steps first).
        start_transitions, end_transitions: optional float tensors [K].

    Returns:
        Float tensor [B]. Empty sequences (all steps masked) score 0.
    """
    potentials = ops.convert_to_tensor(potentials)
    mask = _sequence_mask(potentials, mask)
    float_mask = ops.cast(mask, potentials.dtype)
    num_tags = ops.shape(potentials)[-1]
    tags = ops.where(mask, ops.cast(tags, "int32"), 0)
    transitions = ops.cast(transitions, potentials.dtype)

    unary = ops.take_along_axis(potentials, tags[..., None], axis=-1)[..., 0]
    unary_score = ops.sum(unary * float_mask, axis=1)

    pair_index = tags[:, :-1] * num_tags + tags[:, 1:]
    pair_scores = ops.take(ops.reshape(transitions, (-1,)), pair_index)
    transition_score = ops.sum(pair_scores * float_mask[:, 1:], axis=1)

    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
    start = ops.take(_boundary(start_transitions, potentials), tags[:, 0])
    last_tags = ops.take_along_axis(tags, ops.maximum(lengths - 1, 0)[:, None], axis=1)[:, 0]
    end = ops.take(_boundary(end_transitions, potentials), last_tags)
    boundary_score = ops.where(lengths > 0, start + end, ops.zeros_like(start))
    return unary_score + transition_score + boundary_score


def _forward_alphas(potentials, transitions, steps, start):
    """`(alpha_n [B, K], alphas [T, B, K])`: the forward variables of the last valid step
    and of every step (time-major; padded steps carry alpha_n on); `steps` as
    `_time_major_steps`."""

    def step(alpha, inputs):
        unary, step_mask, first = _unpack_step(inputs)
        recursion = ops.logsumexp(alpha[:, :, None] + transitions[None], axis=1) + unary
        new_alpha = ops.where(first, start[None, :] + unary, recursion)
        new_alpha = ops.where(step_mask[:, None], new_alpha, alpha)
        # Keras' scan (TF backend) needs per-step outputs shaped like the carry.
        return new_alpha, new_alpha

    return ops.scan(step, ops.zeros_like(potentials[:, 0]), steps)


def crf_log_partition(
    potentials,
    transitions,
    mask=None,
    start_transitions=None,
    end_transitions=None,
):
    """Log-partition log Z = log sum_y exp(score(y)) by the forward algorithm in log space.

    alpha_1 = start + u_1;  alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + A[i, j]) + u_t[j];
    log Z = logsumexp_j(alpha_n[j] + end[j]). Padded steps leave alpha unchanged.

    Args: as `crf_sequence_score`, without `tags`.

    Returns:
        Float tensor [B]; 0 for empty sequences.
    """
    potentials, mask, transitions, start, end = _prepared(
        potentials, transitions, mask, start_transitions, end_transitions
    )
    alpha, _ = _forward_alphas(potentials, transitions, _time_major_steps(potentials, mask), start)
    log_z = ops.logsumexp(alpha + end[None, :], axis=1)
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
    return ops.where(lengths > 0, log_z, ops.zeros_like(log_z))


def crf_log_likelihood(
    potentials,
    tags,
    transitions,
    mask=None,
    start_transitions=None,
    end_transitions=None,
):
    """Log-likelihood log p(y | x) = score(y) - log Z of tag paths, tensor [B]."""
    score = crf_sequence_score(
        potentials, tags, transitions, mask, start_transitions, end_transitions
    )
    log_z = crf_log_partition(potentials, transitions, mask, start_transitions, end_transitions)
    return score - log_z


def crf_viterbi_decode(
    potentials,
    transitions,
    mask=None,
    start_transitions=None,
    end_transitions=None,
):
    """Best tag paths by the Viterbi algorithm.

    Args: as `crf_log_partition`.

    Returns:
        `(tags, scores)`: int32 tensor [B, T] of best paths (0 at padded steps) and float
        tensor [B] of their unnormalised scores (0 for empty sequences).
    """
    potentials, mask, transitions, start, end = _prepared(
        potentials, transitions, mask, start_transitions, end_transitions
    )
    num_tags = ops.shape(potentials)[-1]
    steps = _time_major_steps(potentials, mask)
    identity = ops.arange(num_tags, dtype="int32")

    def forward(carry, inputs):
        delta, _ = carry
        unary, step_mask, first = _unpack_step(inputs)
        candidates = delta[:, :, None] + transitions[None]  # [B, K_prev, K_next]
        best_previous = ops.cast(ops.argmax(candidates, axis=1), "int32")
        recursion = ops.max(candidates, axis=1) + unary
        new_delta = ops.where(first, start[None, :] + unary, recursion)
        keep = ops.logical_and(step_mask[:, None], ops.logical_not(first))
        # Padded steps (and the first step) point each tag at itself, so backtracking
        # passes through them unchanged.
        backpointers = ops.where(keep, best_previous, identity[None, :])
        new_delta = ops.where(step_mask[:, None], new_delta, delta)
        new_carry = (new_delta, backpointers)
        return new_carry, new_carry

    initial = (
        ops.zeros_like(potentials[:, 0]),
        ops.zeros(ops.shape(potentials[:, 0]), dtype="int32"),
    )
    (delta, _), (_, backpointers) = ops.scan(forward, initial, steps)
    final = delta + end[None, :]
    last_tags = ops.cast(ops.argmax(final, axis=1), "int32")
    best_scores = ops.max(final, axis=1)

    def backward(tag, step_backpointers):
        previous = ops.take_along_axis(step_backpointers, tag[:, None], axis=1)[:, 0]
        return previous, tag

    _, tags_tm = ops.scan(backward, last_tags, backpointers, reverse=True)
    tags = ops.transpose(tags_tm, (1, 0))
    tags = ops.where(mask, tags, ops.zeros_like(tags))
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
    best_scores = ops.where(lengths > 0, best_scores, ops.zeros_like(best_scores))
    return tags, best_scores


def crf_marginals(
    potentials,
    transitions,
    mask=None,
    start_transitions=None,
    end_transitions=None,
):
    """Posterior marginals p(y_t = k | x) by the forward-backward algorithm.

    alpha_t as in `crf_log_partition`; beta_n = end, beta_t[i] = logsumexp_j(A[i, j] +
    u_{t+1}[j] + beta_{t+1}[j]); p(y_t = k | x) = exp(alpha_t[k] + beta_t[k] - log Z).

    Args: as `crf_log_partition`.

    Returns:
        Float tensor [B, T, K]: each valid step sums to 1 over K; padded steps are 0.
    """
    potentials, mask, transitions, start, end = _prepared(
        potentials, transitions, mask, start_transitions, end_transitions
    )
    steps = _time_major_steps(potentials, mask)
    alpha, alphas = _forward_alphas(potentials, transitions, steps, start)

    def backward(carry, inputs):
        # carry: (u_{t+1} + beta_{t+1}, whether step t+1 is valid, broadcast to [B, K]).
        suffix, next_valid = carry
        unary, step_mask, _ = _unpack_step(inputs)
        recursion = ops.logsumexp(transitions[None] + suffix[:, None, :], axis=2)
        beta = ops.where(next_valid > 0.5, recursion, ops.zeros_like(recursion) + end[None, :])
        valid = ops.zeros_like(beta) + ops.cast(step_mask, beta.dtype)[:, None]
        return (unary + beta, valid), (beta, valid)

    initial = (ops.zeros_like(potentials[:, 0]), ops.zeros_like(potentials[:, 0]))
    _, (betas, _) = ops.scan(backward, initial, steps, reverse=True)
    log_z = ops.logsumexp(alpha + end[None, :], axis=1)
    log_marginals = ops.transpose(alphas + betas, (1, 0, 2)) - log_z[:, None, None]
    return ops.where(mask[..., None], ops.exp(log_marginals), ops.zeros_like(log_marginals))


def crf_posterior_decode(
    potentials,
    transitions,
    mask=None,
    start_transitions=None,
    end_transitions=None,
):
    """Posterior (minimum Bayes risk) decoding: the tag path with the most expected
    correct tags, sum_t p(y_t | x), among the paths the CRF allows.

    Viterbi finds the single most probable path; this maximises the expected token
    accuracy instead (Kall et al. 2005, "An HMM posterior decoder"). Without
    constraints it is the per-step argmax of `crf_marginals`; transitions scored at or
    below `FORBIDDEN_TRANSITION_SCORE / 100` (no probability mass in float32) stay
    forbidden, so the path is valid whenever Viterbi's would be.

    Args: as `crf_log_partition`.

    Returns:
        `(tags, marginals)`: int32 tensor [B, T] (0 at padded steps) and the marginals
        [B, T, K] of `crf_marginals`.
    """
    potentials = ops.convert_to_tensor(potentials)
    marginals = crf_marginals(potentials, transitions, mask, start_transitions, end_transitions)
    threshold = FORBIDDEN_TRANSITION_SCORE / 100

    def allowed_only(scores):
        if scores is None:
            return None
        scores = ops.cast(scores, potentials.dtype)
        return ops.where(scores > threshold, ops.zeros_like(scores), ops.full_like(scores, FORBIDDEN_TRANSITION_SCORE))

    tags, _ = crf_viterbi_decode(
        marginals,
        allowed_only(transitions),
        mask,
        allowed_only(start_transitions),
        allowed_only(end_transitions),
    )
    return tags, marginals


# --------------------------------------------------------------------------------------------
# Transition constraints for tagging schemes.
# --------------------------------------------------------------------------------------------


class AllowedTransitions(NamedTuple):
    """Boolean transition constraints, as built by `allowed_transitions`.

    Attributes:
        transitions: bool array [K, K]; `transitions[i, j]` allows tag i followed by j.
        start: bool array [K]; tags allowed at the first step.
        end: bool array [K]; tags allowed at the last step.
    """

    transitions: np.ndarray
    start: np.ndarray
    end: np.ndarray


def _split_tag(tag: str, scheme: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefixes = {"io": "I", "bio": "BI", "iob1": "BI", "bioes": "BIESLU"}[scheme]
    if len(tag) >= 3 and tag[1] in "-_" and tag[0] in prefixes:
        prefix = {"L": "E", "U": "S"}.get(tag[0], tag[0])
        return prefix, tag[2:]
    raise ValueError(
        f"Tag {tag!r} is not valid in the {scheme.upper()} scheme: expected 'O' or "
        f"one of the prefixes {', '.join(prefixes)} followed by '-' and an entity type "
        "(e.g. 'B-PER'). Remove padding or special tags from the list, or pick the "
        "scheme the data was written in."
    )


def _transition_allowed(scheme, from_prefix, from_type, to_prefix, to_type) -> bool:
    same_type = from_type == to_type
    if scheme == "io":
        return True
    if scheme == "bio":
        if to_prefix in ("O", "B"):
            return True
        return from_prefix in ("B", "I") and same_type  # to I-x
    if scheme == "iob1":
        if to_prefix in ("O", "I"):
            return True
        return from_prefix in ("B", "I") and same_type  # to B-x
    # bioes
    if from_prefix in ("O", "E", "S"):
        return to_prefix in ("O", "B", "S")
    return to_prefix in ("I", "E") and same_type  # from B-x or I-x


def allowed_transitions(tags: Sequence[str], scheme: str) -> AllowedTransitions:
    """Builds the transitions allowed by a tagging scheme from tag names.

    Schemes (tag names like "B-PER", "I-LOC", "O"; BIOES accepts the BILOU aliases
    L for E and U for S):
    - "io": every transition allowed.
    - "bio" (IOB2): I-x only after B-x or I-x; a sequence cannot start with I-x.
    - "iob1": B-x only after B-x or I-x (it separates two adjacent chunks of type x).
    - "bioes": after O, E-x or S-x comes O, B-y or S-y; after B-x or I-x comes I-x or
      E-x; sequences start with O, B or S and end with O, E or S.

    Args:
        tags: the tag vocabulary, in index order.
        scheme: one of "io", "bio", "iob1", "bioes" (case-insensitive).

    Returns:
        `AllowedTransitions(transitions [K, K], start [K], end [K])` of numpy bools, to
        pass to `CRF(allowed_transitions=..., allowed_start_tags=..., allowed_end_tags=...)`
        or to `CRF.for_tags`.

    Example:
    >>> allowed = allowed_transitions(["O", "B-PER", "I-PER"], "bio")
    >>> bool(allowed.transitions[0, 2])  # O -> I-PER
    False
    """
    scheme = scheme.lower()
    if scheme not in TAGGING_SCHEMES:
        raise ValueError(f"Unknown tagging scheme {scheme!r}; expected one of {TAGGING_SCHEMES}.")
    parsed = [_split_tag(tag, scheme) for tag in tags]
    num_tags = len(parsed)
    transitions = np.zeros((num_tags, num_tags), dtype=bool)
    for i, (from_prefix, from_type) in enumerate(parsed):
        for j, (to_prefix, to_type) in enumerate(parsed):
            transitions[i, j] = _transition_allowed(
                scheme, from_prefix, from_type, to_prefix, to_type
            )
    prefixes = [prefix for prefix, _ in parsed]
    if scheme == "bio":
        start = np.array([p != "I" for p in prefixes])
        end = np.ones(num_tags, dtype=bool)
    elif scheme == "bioes":
        start = np.array([p in ("O", "B", "S") for p in prefixes])
        end = np.array([p in ("O", "E", "S") for p in prefixes])
    elif scheme == "iob1":
        start = np.array([p != "B" for p in prefixes])
        end = np.ones(num_tags, dtype=bool)
    else:
        start = np.ones(num_tags, dtype=bool)
        end = np.ones(num_tags, dtype=bool)
    return AllowedTransitions(transitions, start, end)


def _as_bool_list(value, shape, name):
    if value is None:
        return None
    array = np.asarray(value, dtype=bool)
    if array.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape} for this CRF; got {array.shape}.")
    return array.tolist()


# --------------------------------------------------------------------------------------------
# Layer and model wrapper.
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="rnn_suite")
class CRF(keras.layers.Layer):
    """Linear-chain conditional random field over unary potentials.

    The layer takes unary potentials (emission scores, e.g. the output of a
    `Dense(num_tags)` on top of a BiLSTM) and owns the transition scores. The score of a
    tag path y_1..y_n for one sequence (Lafferty et al. 2001; BiLSTM-CRF of Lample et al.
    2016, "Neural Architectures for Named Entity Recognition") is

        score(x, y) = s[y_1] + sum_{t=1..n} u_t[y_t] + sum_{t=2..n} A[y_{t-1}, y_t] + e[y_n]
        log p(y | x) = score(x, y) - log sum_{y'} exp(score(x, y'))

    with learned transitions A [K, K] and start / end transitions s, e [K]. The
    log-partition is computed by the forward algorithm in log space and the best path
    by Viterbi decoding, both in O(T K^2).

    The layer does not include the dense projection: put a `keras.layers.Dense(num_tags)`
    before it, so that the potentials can also come from any other model.

    Transition constraints (e.g. from `allowed_transitions(tags, "bio")`) give forbidden
    transitions the score -1e4 both in decoding and in the loss, so a constrained CRF
    never decodes an invalid tag sequence and never spends probability mass on one.
    Their learned weights are kept but unused.

    Calling the layer returns the Viterbi tags; training uses `log_likelihood`. The
    easiest way to train it is `CRFTagger`, which wraps a potentials model and makes
    `model.fit(x, tags)` minimise the negative log-likelihood.

    Args:
        num_tags: int, number of tags K.
        allowed_transitions: optional bool array-like [K, K]; False entries are forbidden.
        allowed_start_tags: optional bool array-like [K]; tags allowed first.
        allowed_end_tags: optional bool array-like [K]; tags allowed last.
        use_boundary_transitions: bool, whether to learn start/end transitions s and e.
            Defaults to `True`.
        transitions_initializer: initializer of A. Defaults to `"glorot_uniform"`.
        boundary_initializer: initializer of s and e. Defaults to `"zeros"`.
        transitions_regularizer: optional regularizer of A.
        jit_compile: `decode` (Viterbi) as an XLA program, compiled once per bucket of
            batch and time sizes (`layers.loop.buckets`): serving latency. Needs
            TensorFlow.
        **kwargs: base layer arguments (`name`, `dtype`, ...). With mixed precision, give
            the CRF `dtype="float32"`.

    Call arguments:
        potentials: float tensor [B, T, K] of unary potentials.
        mask: optional bool tensor [B, T], True at valid steps. It must be right-padded
            (valid steps first). Taken from the Keras mask of `potentials` when present.

    Returns:
        int32 tensor [B, T] of best tag paths, 0 at padded steps. The input mask is
        propagated. `decode` also returns the path scores.

    Example:
    >>> tokens = keras.Input((None,), dtype="int32")
    >>> x = keras.layers.Embedding(1000, 32, mask_zero=True)(tokens)
    >>> x = keras.layers.Bidirectional(keras.layers.LSTM(32, return_sequences=True))(x)
    >>> potentials = keras.layers.Dense(5)(x)
    >>> tagger = CRFTagger(keras.Model(tokens, potentials), crf=CRF(5))
    >>> tagger.compile(optimizer="adam")   # the CRF loss is built in
    >>> # tagger.fit(token_ids, tag_ids); tagger.predict(token_ids)["tags"]
    """

    def __init__(
        self,
        num_tags: int,
        allowed_transitions=None,
        allowed_start_tags=None,
        allowed_end_tags=None,
        use_boundary_transitions: bool = True,
        transitions_initializer="glorot_uniform",
        boundary_initializer="zeros",
        transitions_regularizer=None,
        jit_compile: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.jit_compile = bool(jit_compile)
        if num_tags < 1:
            raise ValueError(f"`num_tags` must be a positive integer; got {num_tags}.")
        self.num_tags = int(num_tags)
        self.allowed_transitions = _as_bool_list(
            allowed_transitions, (num_tags, num_tags), "allowed_transitions"
        )
        self.allowed_start_tags = _as_bool_list(
            allowed_start_tags, (num_tags,), "allowed_start_tags"
        )
        self.allowed_end_tags = _as_bool_list(allowed_end_tags, (num_tags,), "allowed_end_tags")
        if (allowed_start_tags is not None or allowed_end_tags is not None) and not (
            use_boundary_transitions
        ):
            raise ValueError(
                "`allowed_start_tags`/`allowed_end_tags` need `use_boundary_transitions=True`."
            )
        self.use_boundary_transitions = use_boundary_transitions
        self.transitions_initializer = keras.initializers.get(transitions_initializer)
        self.boundary_initializer = keras.initializers.get(boundary_initializer)
        self.transitions_regularizer = keras.regularizers.get(transitions_regularizer)
        self.supports_masking = True

    @classmethod
    def for_tags(cls, tags: Sequence[str], scheme: str, **kwargs) -> CRF:
        """A CRF over `tags` constrained to the transitions valid in `scheme`."""
        allowed = allowed_transitions(tags, scheme)
        return cls(
            len(tags),
            allowed_transitions=allowed.transitions,
            allowed_start_tags=allowed.start,
            allowed_end_tags=allowed.end,
            **kwargs,
        )

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.num_tags:
            raise ValueError(
                f"CRF '{self.name}' expects potentials with last dimension num_tags="
                f"{self.num_tags}; got shape {input_shape}. Project with "
                f"keras.layers.Dense({self.num_tags}) first."
            )
        self.transitions = self.add_weight(
            name="transitions",
            shape=(self.num_tags, self.num_tags),
            initializer=self.transitions_initializer,
            regularizer=self.transitions_regularizer,
        )
        if self.use_boundary_transitions:
            self.start_transitions = self.add_weight(
                name="start_transitions",
                shape=(self.num_tags,),
                initializer=self.boundary_initializer,
            )
            self.end_transitions = self.add_weight(
                name="end_transitions",
                shape=(self.num_tags,),
                initializer=self.boundary_initializer,
            )
        else:
            self.start_transitions = None
            self.end_transitions = None

    def constrained_weights(self):
        """Returns `(transitions, start, end)` with forbidden entries set to -1e4."""
        dtype = self.compute_dtype

        def constrain(weight, allowed):
            if weight is None:
                return None
            weight = ops.cast(weight, dtype)
            if allowed is None:
                return weight
            forbidden = ops.full(ops.shape(weight), FORBIDDEN_TRANSITION_SCORE, dtype=dtype)
            return ops.where(ops.convert_to_tensor(allowed, dtype="bool"), weight, forbidden)

        return (
            constrain(self.transitions, self.allowed_transitions),
            constrain(self.start_transitions, self.allowed_start_tags),
            constrain(self.end_transitions, self.allowed_end_tags),
        )

    def _prepare(self, potentials):
        if not self.built:
            self.build(tuple(potentials.shape))
        return ops.cast(ops.convert_to_tensor(potentials), self.compute_dtype)

    def log_likelihood(self, potentials, tags, mask=None):
        """Log-likelihood log p(tags | potentials) per sequence, float tensor [B]."""
        potentials = self._prepare(potentials)
        transitions, start, end = self.constrained_weights()
        return crf_log_likelihood(potentials, tags, transitions, mask, start, end)

    def log_partition(self, potentials, mask=None):
        """Log-partition log Z per sequence, float tensor [B]."""
        potentials = self._prepare(potentials)
        transitions, start, end = self.constrained_weights()
        return crf_log_partition(potentials, transitions, mask, start, end)

    def sequence_score(self, potentials, tags, mask=None):
        """Unnormalised score of the given tag paths, float tensor [B]."""
        potentials = self._prepare(potentials)
        transitions, start, end = self.constrained_weights()
        return crf_sequence_score(potentials, tags, transitions, mask, start, end)

    def decode(self, potentials, mask=None):
        """Viterbi decoding: `(tags [B, T] int32, scores [B])`."""
        potentials = self._prepare(potentials)
        transitions, start, end = self.constrained_weights()
        if not self.jit_compile:
            return crf_viterbi_decode(potentials, transitions, mask, start, end)
        from layers.loop.buckets import compiled_on_buckets  # TensorFlow: XLA

        if mask is None:
            mask = ops.ones(ops.shape(potentials)[:2], dtype="bool")
        return compiled_on_buckets(
            lambda p, m: crf_viterbi_decode(p, transitions, m, start, end), potentials, mask
        )

    def marginals(self, potentials, mask=None):
        """Posterior marginals p(y_t = k | x), float tensor [B, T, K] (0 at padding)."""
        potentials = self._prepare(potentials)
        transitions, start, end = self.constrained_weights()
        return crf_marginals(potentials, transitions, mask, start, end)

    def posterior_decode(self, potentials, mask=None):
        """Posterior decoding: `(tags [B, T] int32, marginals [B, T, K])`, the allowed
        path with the most expected correct tags (see `crf_posterior_decode`)."""
        potentials = self._prepare(potentials)
        transitions, start, end = self.constrained_weights()
        return crf_posterior_decode(potentials, transitions, mask, start, end)

    def loss(self, potentials, tags, mask=None, sample_weight=None):
        """Mean negative log-likelihood over the batch (weighted by `sample_weight` [B])."""
        negative_log_likelihood = -self.log_likelihood(potentials, tags, mask)
        if sample_weight is None:
            return ops.mean(negative_log_likelihood)
        sample_weight = ops.cast(ops.reshape(sample_weight, (-1,)), negative_log_likelihood.dtype)
        return ops.sum(negative_log_likelihood * sample_weight) / ops.maximum(
            ops.sum(sample_weight), 1e-12
        )

    def call(self, potentials, mask=None):
        tags, _ = self.decode(potentials, mask)
        return tags

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def compute_output_spec(self, potentials, mask=None):
        return keras.KerasTensor(tuple(potentials.shape[:-1]), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_tags": self.num_tags,
                "allowed_transitions": self.allowed_transitions,
                "allowed_start_tags": self.allowed_start_tags,
                "allowed_end_tags": self.allowed_end_tags,
                "use_boundary_transitions": self.use_boundary_transitions,
                "transitions_initializer": keras.initializers.serialize(
                    self.transitions_initializer
                ),
                "boundary_initializer": keras.initializers.serialize(self.boundary_initializer),
                "transitions_regularizer": keras.regularizers.serialize(
                    self.transitions_regularizer
                ),
                "jit_compile": self.jit_compile,
            }
        )
        return config


class _SequenceMask(keras.layers.Layer):
    """Returns the Keras mask of its input as a bool tensor [B, T] (all True if none)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        return _sequence_mask(inputs, mask)

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="rnn_suite")
class CRFTagger(keras.Model):
    """Trains a potentials-producing model with a CRF loss; predicts Viterbi tag paths.

    Wraps a `backbone` model that maps inputs to unary potentials [B, T, K] (for a
    BiLSTM-CRF: embeddings, a bidirectional LSTM and a `Dense(K)`) and a `CRF` layer. Its
    `compute_loss` is the mean CRF negative log-likelihood (Lample et al. 2016) of the
    target tags, so `compile(optimizer=...)` needs no loss and `fit(x, tags)` works with
    any Keras training loop, distribution strategy and callback. Regularisation losses
    of the backbone and the CRF are added.

    The sequence mask is the Keras mask of the backbone's output (e.g. from
    `Embedding(mask_zero=True)`); a backbone may instead return `(potentials, mask)`.
    Tags at padded steps are ignored, whatever their value.

    Args:
        backbone: a `keras.Model`/layer mapping inputs to potentials [B, T, K] (or to
            `(potentials, mask)`).
        crf: the `CRF` layer; `CRF(num_tags)` is created when omitted.
        num_tags: number of tags, used when `crf` is omitted.
        **kwargs: base model arguments (`name`, ...).

    Call arguments:
        inputs: whatever the backbone takes.
        training: bool, training mode.

    Returns:
        A dict with "potentials" [B, T, K] and "mask" [B, T] (bool), plus, outside
        training, "tags" [B, T] int32 (Viterbi paths, 0 at padded steps) and "scores" [B].
        `model.export(path)` serves this dict.

    Example:
    >>> tokens = keras.Input((None,), dtype="int32")
    >>> x = keras.layers.Embedding(100, 16, mask_zero=True)(tokens)
    >>> x = keras.layers.Bidirectional(keras.layers.LSTM(16, return_sequences=True))(x)
    >>> tagger = CRFTagger(keras.Model(tokens, keras.layers.Dense(3)(x)), num_tags=3)
    >>> tagger.compile(optimizer="adam")
    >>> # tagger.fit(token_ids, tag_ids, epochs=5); tagger.predict(token_ids)["tags"]
    """

    def __init__(self, backbone, crf: CRF | None = None, num_tags: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if crf is None:
            if num_tags is None:
                raise ValueError("CRFTagger needs either a `crf` layer or `num_tags`.")
            crf = CRF(num_tags)
        self.backbone = backbone
        self.crf = crf
        self._sequence_mask = _SequenceMask(name="sequence_mask")
        if not crf.built:
            crf.build((None, None, crf.num_tags))

    def build(self, input_shape):
        if not self.backbone.built:
            self.backbone.build(input_shape)

    def call(self, inputs, training=None):
        outputs = self.backbone(inputs, training=training)
        if isinstance(outputs, (tuple, list)):
            potentials, mask = outputs
            mask = ops.cast(mask, "bool")
        else:
            potentials = outputs
            mask = self._sequence_mask(potentials)
        result = {"potentials": potentials, "mask": mask}
        if not training:
            tags, scores = self.crf.decode(potentials, mask)
            result.update({"tags": tags, "scores": scores})
        return result

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.crf.loss(y_pred["potentials"], y, y_pred["mask"], sample_weight)
        for additional_loss in self.losses:
            loss = loss + ops.cast(additional_loss, loss.dtype)
        return loss

    def get_config(self):
        return {
            "name": self.name,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "crf": keras.saving.serialize_keras_object(self.crf),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["crf"] = keras.saving.deserialize_keras_object(config["crf"])
        return cls(**config)
