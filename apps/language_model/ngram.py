"""The count-based baseline: an n-gram model with interpolated Kneser-Ney or add-k smoothing.

Interpolated Kneser-Ney (Kneser & Ney 1995; the interpolated form of Chen & Goodman
1999), with one absolute discount D per order:

    P_k(w | h) = max(c_k(h w) - D_k, 0) / c_k(h .)
                 + D_k * N1+(h .) / c_k(h .) * P_{k-1}(w | h')         if c_k(h .) > 0
    P_k(w | h) = P_{k-1}(w | h')                                     otherwise
    P_0(w)     = 1 / V

where h' drops the oldest token of h, c_n are the raw counts of the highest order n and
c_k (k < n) the continuation counts N1+(. h w) (the number of distinct tokens seen before
h w). Every P_k(. | h) sums to one over the V tokens of the vocabulary, seen or not.
Add-k: P(w | h) = (c(h w) + k) / (c(h .) + k V) with raw n-gram counts.

Contexts that reach before the start of a text are padded with a start symbol that is
never predicted. Token ids are integers in [0, V).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import numpy as np

_START = -1  # context-only padding symbol


class NGramModel:
    """An order-``order`` n-gram model over token ids ``0 .. vocab_size - 1``.

    Args:
        order: n (3 = trigram).
        vocab_size: V, the number of tokens the distribution is over.
        smoothing: ``"kneser_ney"`` (interpolated) or ``"add_k"``.
        discount: Kneser-Ney discount in (0, 1); 0 estimates one per order as
            n1 / (n1 + 2 n2) (Ney, Essen & Kneser 1994).
        add_k: the k of add-k smoothing.
    """

    def __init__(
        self,
        order: int,
        vocab_size: int,
        smoothing: str = "kneser_ney",
        discount: float = 0.75,
        add_k: float = 0.01,
    ):
        if order < 1:
            raise ValueError(f"n-gram order must be at least 1, got {order}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        if smoothing not in ("kneser_ney", "add_k"):
            raise ValueError(f"smoothing must be 'kneser_ney' or 'add_k', got {smoothing!r}")
        if smoothing == "kneser_ney" and not 0.0 <= discount < 1.0:
            raise ValueError(f"Kneser-Ney discount must be in [0, 1), got {discount}")
        if smoothing == "add_k" and add_k <= 0:
            raise ValueError(f"add_k must be positive, got {add_k}")
        self.order = order
        self.vocab_size = vocab_size
        self.smoothing = smoothing
        self.discount = discount
        self.add_k = add_k
        # levels[k][context] = {token: count}, context a tuple of k - 1 tokens (k = 1..n).
        self.levels: list[dict[tuple, dict[int, int]]] = []
        self.totals: list[dict[tuple, int]] = []
        self.types: list[dict[tuple, int]] = []
        self.discounts: list[float] = []

    # ------------------------------------------------------------------ training
    def fit(self, ids: Sequence[int] | np.ndarray) -> NGramModel:
        """Counts the n-grams of one token sequence (a whole training split)."""
        tokens = [int(token) for token in np.asarray(ids).reshape(-1).tolist()]
        if not tokens:
            raise ValueError("cannot fit an n-gram model on an empty sequence")
        bad = next((t for t in tokens if not 0 <= t < self.vocab_size), None)
        if bad is not None:
            raise ValueError(f"token id {bad} outside the vocabulary [0, {self.vocab_size})")
        n = self.order
        padded = [_START] * (n - 1) + tokens
        top: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
        for i in range(n - 1, len(padded)):
            top[tuple(padded[i - n + 1 : i])][padded[i]] += 1
        levels: list[dict] = [None] * (n + 1)  # type: ignore[list-item]
        levels[n] = top
        for k in range(n - 1, 0, -1):
            if self.smoothing == "add_k":
                break
            # Continuation counts: distinct left extensions of (h w) at order k + 1.
            continuation: dict[tuple, collections.Counter] = collections.defaultdict(
                collections.Counter
            )
            for context, followers in levels[k + 1].items():
                shorter = context[1:]
                for token in followers:
                    continuation[shorter][token] += 1
            levels[k] = continuation
        self.levels = [
            {} if level is None else {c: dict(f) for c, f in level.items()} for level in levels
        ]
        self.totals = [{c: sum(f.values()) for c, f in level.items()} for level in self.levels]
        self.types = [{c: len(f) for c, f in level.items()} for level in self.levels]
        self.discounts = [self._estimate_discount(level) for level in self.levels]
        return self

    def _estimate_discount(self, level: dict) -> float:
        if self.discount > 0 or not level:
            return self.discount
        histogram = collections.Counter(
            count for followers in level.values() for count in followers.values() if count <= 2
        )
        n1, n2 = histogram[1], histogram[2]
        estimate = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
        return min(max(estimate, 0.05), 0.95)

    # ------------------------------------------------------------------ probabilities
    def _context(self, history: Sequence[int]) -> tuple:
        history = [int(token) for token in history][-(self.order - 1) :] if self.order > 1 else []
        return tuple([_START] * (self.order - 1 - len(history)) + history)

    def prob(self, token: int, history: Sequence[int] = ()) -> float:
        """P(token | the last order - 1 tokens of history)."""
        self._check_fitted()
        context = self._context(history)
        if self.smoothing == "add_k":
            followers = self.levels[self.order].get(context, {})
            total = self.totals[self.order].get(context, 0)
            return (followers.get(token, 0) + self.add_k) / (total + self.add_k * self.vocab_size)
        probability = 1.0 / self.vocab_size
        for k in range(1, self.order + 1):
            sub_context = context[len(context) - (k - 1) :] if k > 1 else ()
            total = self.totals[k].get(sub_context, 0)
            if total == 0:
                continue
            discount = self.discounts[k]
            count = self.levels[k][sub_context].get(token, 0)
            probability = (
                max(count - discount, 0.0) / total
                + discount * self.types[k][sub_context] / total * probability
            )
        return probability

    def distribution(self, history: Sequence[int] = ()) -> np.ndarray:
        """P(. | history) over the whole vocabulary, ``[vocab_size]`` float64."""
        self._check_fitted()
        context = self._context(history)
        if self.smoothing == "add_k":
            counts = np.zeros(self.vocab_size)
            for token, count in self.levels[self.order].get(context, {}).items():
                counts[token] = count
            return (counts + self.add_k) / (counts.sum() + self.add_k * self.vocab_size)
        probabilities = np.full(self.vocab_size, 1.0 / self.vocab_size)
        for k in range(1, self.order + 1):
            sub_context = context[len(context) - (k - 1) :] if k > 1 else ()
            total = self.totals[k].get(sub_context, 0)
            if total == 0:
                continue
            discount = self.discounts[k]
            counts = np.zeros(self.vocab_size)
            for token, count in self.levels[k][sub_context].items():
                counts[token] = count
            probabilities = (
                np.maximum(counts - discount, 0.0) / total
                + discount * self.types[k][sub_context] / total * probabilities
            )
        return probabilities

    def evaluate(self, ids: Sequence[int] | np.ndarray) -> dict[str, float]:
        """Cross-entropy of a whole split: every token but the first, given all tokens
        before it (the same targets the RNN's evaluation scores)."""
        tokens = [int(token) for token in np.asarray(ids).reshape(-1).tolist()]
        if len(tokens) < 2:
            raise ValueError("evaluation needs at least 2 tokens")
        total = 0.0
        for i in range(1, len(tokens)):
            total -= math.log(self.prob(tokens[i], tokens[max(0, i - self.order + 1) : i]))
        count = len(tokens) - 1
        nats = total / count
        return {
            "nats_per_token": nats,
            "bits_per_token": nats / math.log(2),
            "perplexity": math.exp(nats),
            "num_targets": count,
        }

    def _check_fitted(self) -> None:
        if not self.levels:
            raise RuntimeError("the n-gram model is not fitted; call fit(ids) first")

    @property
    def name(self) -> str:
        smoothing = (
            "interpolated Kneser-Ney" if self.smoothing == "kneser_ney" else f"add-{self.add_k}"
        )
        return f"{self.order}-gram, {smoothing}"
