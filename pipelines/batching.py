"""Batching: bucketing by length, token-budget batches, Morishita et al.'s strategies.

Option names follow OpenNMT-tf: ``batch_type`` is ``"examples"`` (``batch_size`` counts
examples) or ``"tokens"`` (``batch_size`` is a token budget: a batch's examples times its
padded length never exceeds it), ``length_bucket_width`` is the width of a length bucket.

Every function accepts datasets whose elements are a tensor, a tuple or a dict, with any
number of variable-length features (e.g. ``{"source": ids, "target": ids}``); variable
dimensions are padded to the longest example of each batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

BATCH_TYPES = ("examples", "tokens")
STRATEGIES = ("shuffle", "src", "tgt", "src_tgt", "tgt_src")

LengthFn = Callable[[Any], Any]


# --------------------------------------------------------------------------- helpers


def _unpacked(fn: Callable) -> Callable:
    """Adapts ``fn(element)`` to tf.data's calling convention (tuples are unpacked)."""
    return lambda *args: fn(args[0] if len(args) == 1 else args)


def default_length_fn(element) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
    """Length of an example: ``(len(source), len(target))`` for pairs, else the first
    variable-length feature's length.

    Pairs are dicts with ``"source"`` and ``"target"`` keys or 2-tuples of sequences.
    """
    if isinstance(element, dict) and "source" in element and "target" in element:
        return tf.shape(element["source"])[0], tf.shape(element["target"])[0]
    if (
        isinstance(element, (tuple, list))
        and len(element) == 2
        and all(
            isinstance(part, tf.Tensor) and part.shape.rank and part.shape.rank >= 1
            for part in element
        )
    ):
        return tf.shape(element[0])[0], tf.shape(element[1])[0]
    for tensor in tf.nest.flatten(element):
        if tensor.shape.rank and tensor.shape.rank >= 1:
            return tf.shape(tensor)[0]
    raise ValueError("no sequence feature in the dataset's elements; pass length_fn")


def _max_length(lengths) -> tf.Tensor:
    lengths = [tf.cast(length, tf.int64) for length in tf.nest.flatten(lengths)]
    return tf.reduce_max(tf.stack(lengths)) if len(lengths) > 1 else lengths[0]


def _padding_values(element_spec, padding_values):
    if padding_values is not None:
        return padding_values
    return tf.nest.map_structure(
        lambda spec: tf.constant("" if spec.dtype == tf.string else 0, spec.dtype), element_spec
    )


def geometric_boundaries(max_length: int, min_length: int = 8, step: float = 1.1) -> list[int]:
    """Bucket upper bounds growing by ``step`` from ``min_length`` up to ``max_length``.

    Each bucket pads at most ``step - 1`` (10 %) of its longest example, so short and long
    sequences waste the same fraction (the Tensor2Tensor default).
    """
    boundaries = []
    bound = float(min_length)
    while bound < max_length:
        boundaries.append(int(bound))
        bound = max(bound + 1, bound * step)
    boundaries.append(int(max_length))
    return sorted(set(boundaries))


def _check_batch_type(batch_type: str, batch_size: int) -> None:
    if batch_type not in BATCH_TYPES:
        raise ValueError(f"batch_type must be one of {BATCH_TYPES}, got {batch_type!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def reshuffled_passes(dataset: tf.data.Dataset, buffer_size: int, seed: int) -> tf.data.Dataset:
    """``dataset`` repeated forever, each pass shuffled (through a buffer of ``buffer_size``)
    in an order drawn from ``seed`` and the pass's index alone: every iterator of the result,
    in any process, yields the same stream.

    ``dataset.shuffle(n, seed=seed).repeat()`` does not: each pass draws its order from a
    seed generator shared by all iterators of the dataset, so an iterator that is made, read
    ahead by its prefetching and dropped (Keras's ``fit`` under a tf.distribute strategy
    builds the model from one) shifts the next iterator's orders by as many passes as it
    happened to start, which depends on timing.
    """

    def one_pass(index):
        pass_seed = tf.random.stateless_uniform([], seed=tf.stack([tf.constant(seed, tf.int64), index]),
                                                minval=None, maxval=None, dtype=tf.int64)
        # The order must not depend on the global seed either; and with a global seed of 0,
        # TensorFlow's seed resolution would test the tensor seed as a Python bool and fail.
        tf.compat.v1.get_default_graph().seed = None
        return dataset.shuffle(buffer_size, seed=pass_seed, reshuffle_each_iteration=False)

    return tf.data.Dataset.counter().flat_map(one_pass)


# --------------------------------------------------------------------------- bucketing


def bucket_by_length(
    dataset: tf.data.Dataset,
    length_fn: LengthFn | None = None,
    batch_size: int = 32,
    batch_type: str = "examples",
    bucket_boundaries: Sequence[int] | None = None,
    length_bucket_width: int | None = None,
    max_length: int | None = None,
    drop_longer: bool = False,
    padded_shapes=None,
    padding_values=None,
    batch_size_multiple: int = 1,
    shuffle: bool = False,
    shuffle_buffer_size: int = 10_000,
    batch_shuffle_buffer_size: int = 64,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Groups examples of similar length into padded batches (``group_by_window``).

    Bucket ``i`` holds the lengths in ``(upper[i-1], upper[i]]``. The upper bounds are
    ``bucket_boundaries``, or multiples of ``length_bucket_width``, or by default
    :func:`geometric_boundaries` (10 % growth). An example's length is ``length_fn(example)``
    (a scalar, or a tuple such as ``(source_length, target_length)`` whose maximum is used).

    With ``batch_type="examples"`` every batch holds ``batch_size`` examples (the last of
    each bucket may hold fewer). With ``batch_type="tokens"`` a bucket with upper bound
    ``L`` makes batches of ``batch_size // L`` examples (rounded down to a multiple of
    ``batch_size_multiple``, at least 1), so examples x padded length never exceeds the
    budget.

    Args:
        dataset: unbatched examples.
        length_fn: example -> length(s); default :func:`default_length_fn`.
        batch_size: examples per batch, or the token budget.
        batch_type: ``"examples"`` or ``"tokens"``.
        bucket_boundaries: increasing inclusive upper bounds of the buckets.
        length_bucket_width: bucket width, used when ``bucket_boundaries`` is None.
        max_length: longest allowed example; lengths above the last boundary go to a last
            bucket bounded by it. Default: the token budget for ``"tokens"``, unbounded for
            ``"examples"``.
        drop_longer: drop examples longer than ``max_length`` (counted as lost!) instead of
            failing with an error naming the length.
        padded_shapes, padding_values: as in ``Dataset.padded_batch`` (default: pad every
            variable dimension to the batch's longest, with 0 or ``""``).
        batch_size_multiple: token mode only; batch sizes are multiples of it when >= it.
        shuffle: shuffle examples before bucketing (``shuffle_buffer_size``) and batches
            after it (``batch_shuffle_buffer_size``).
        seed: seed of both shuffles.
        drop_remainder: drop each bucket's final, smaller batch.

    Returns:
        A dataset of padded batches, no example lost or repeated (unless ``drop_longer``
        or ``drop_remainder``).
    """
    _check_batch_type(batch_type, batch_size)
    length_fn = length_fn or default_length_fn
    if max_length is None and batch_type == "tokens":
        max_length = batch_size
    if max_length is not None and batch_type == "tokens" and max_length > batch_size:
        raise ValueError(
            f"max_length {max_length} exceeds the token budget {batch_size}: an example that "
            "long could not fit in any batch"
        )
    if bucket_boundaries is not None:
        boundaries = sorted(int(b) for b in bucket_boundaries)
        if any(b < 1 for b in boundaries) or len(set(boundaries)) != len(boundaries):
            raise ValueError(
                f"bucket_boundaries must be distinct positive integers: {bucket_boundaries}"
            )
        width = None
    elif length_bucket_width is not None:
        if length_bucket_width < 1:
            raise ValueError(f"length_bucket_width must be >= 1, got {length_bucket_width}")
        boundaries, width = None, int(length_bucket_width)
    else:
        boundaries = geometric_boundaries(max_length or 1024)
        width = None
    if boundaries is not None and max_length is not None:
        boundaries = [b for b in boundaries if b < max_length] + [max_length]
    overflow_bound = max_length if max_length is not None else np.iinfo(np.int32).max

    def bucket_upper(bucket_id):
        if width is not None:
            upper = (bucket_id + 1) * width
        else:
            uppers = tf.constant(boundaries + [overflow_bound], tf.int64)
            upper = tf.gather(uppers, bucket_id)
        return tf.minimum(upper, overflow_bound)

    def bucket_of(length):
        length = tf.maximum(length, 1)
        if width is not None:
            return (length - 1) // width
        return tf.searchsorted(
            tf.constant(boundaries, tf.int64), length[None], side="left", out_type=tf.int64
        )[0]

    def window_size(bucket_id):
        if batch_type == "examples":
            return tf.constant(batch_size, tf.int64)
        size = batch_size // bucket_upper(bucket_id)
        if batch_size_multiple > 1:
            size = tf.where(size >= batch_size_multiple, size - size % batch_size_multiple, size)
        return tf.maximum(size, 1)

    def example_length(*args):
        return _max_length(_unpacked(length_fn)(*args))

    check_length = max_length is not None and not drop_longer
    if max_length is not None and drop_longer:
        dataset = dataset.filter(lambda *args: example_length(*args) <= max_length)

    def key_func(*args):
        length = example_length(*args)
        if check_length:  # checked here rather than in a map of its own: one op per example
            with tf.control_dependencies(
                [
                    tf.debugging.assert_less_equal(
                        length,
                        tf.constant(max_length, tf.int64),
                        message=f"an example is longer than max_length={max_length}; "
                        "raise max_length (or the token budget) or pass drop_longer=True",
                    )
                ]
            ):
                length = tf.identity(length)
        return bucket_of(length)

    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer_size, seed=seed)
    values = _padding_values(dataset.element_spec, padding_values)

    def reduce_func(bucket_id, window):
        return window.padded_batch(
            window_size(bucket_id),
            padded_shapes=padded_shapes,
            padding_values=values,
            drop_remainder=drop_remainder,
        )

    batched = dataset.group_by_window(
        key_func=key_func,
        reduce_func=reduce_func,
        window_size_func=window_size,
    )
    if shuffle and batch_shuffle_buffer_size > 1:
        batched = batched.shuffle(
            batch_shuffle_buffer_size, seed=None if seed is None else seed + 1
        )
    return batched


def batch(
    dataset: tf.data.Dataset,
    batch_size: int,
    padded_shapes=None,
    padding_values=None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Plain ``padded_batch`` in dataset order (the baseline the bucketing modes beat)."""
    return dataset.padded_batch(
        batch_size,
        padded_shapes=padded_shapes,
        padding_values=_padding_values(dataset.element_spec, padding_values),
        drop_remainder=drop_remainder,
    )


# --------------------------------------------------------------------------- Morishita


def _sort_order(strategy, source_lengths, target_lengths):
    if strategy == "shuffle":
        return tf.range(tf.size(source_lengths, out_type=tf.int64))
    primary, secondary = {
        "src": (source_lengths, None),
        "tgt": (target_lengths, None),
        "src_tgt": (source_lengths, target_lengths),
        "tgt_src": (target_lengths, source_lengths),
    }[strategy]
    key = primary
    if secondary is not None:
        key = primary * (tf.reduce_max(secondary) + 1) + secondary
    return tf.cast(tf.argsort(key, stable=True), tf.int64)


def _greedy_token_batches(lengths: tf.Tensor, budget: int) -> tf.Tensor:
    """Batch ids for consecutive examples such that count x max length <= budget."""

    def step(state, length):
        batch_id, count, longest = state[0], state[1], state[2]
        new_longest = tf.maximum(longest, length)
        start_new = tf.logical_and(count > 0, (count + 1) * new_longest > budget)
        return tf.where(
            start_new,
            tf.stack([batch_id + 1, tf.constant(1, tf.int64), length]),
            tf.stack([batch_id, count + 1, new_longest]),
        )

    initial = tf.constant([0, 0, 0], tf.int64)
    states = tf.scan(step, lengths, initializer=initial)
    return states[:, 0]


_CHUNK = 256


def _record_padding(values):
    zero = tf.constant(0, tf.int64)
    return {"element": values, "source_length": zero, "target_length": zero, "random_key": zero}


def _ragged_windows(
    dataset: tf.data.Dataset, make_record: Callable, window_size: int, padding_values
) -> tf.data.Dataset:
    """``dataset.map(make_record).ragged_batch(window_size)``, made fast for large windows.

    ``ragged_batch`` converts every element into a ragged variant (~25 us each); padding
    small chunks first and batching the chunks divides that cost by the chunk size. Used
    when only the first dimension of a feature varies; otherwise plain ``ragged_batch``.
    """
    records = dataset.map(make_record)
    specs = tf.nest.flatten(records.element_spec)
    simple = all(
        isinstance(spec, tf.TensorSpec)
        and spec.shape.rank is not None
        and all(dim is not None for dim in spec.shape[1:])
        for spec in specs
    )
    if not simple or window_size < 2 * _CHUNK:
        return records.ragged_batch(window_size)
    variable = [spec.shape.rank >= 1 and spec.shape[0] is None for spec in specs]

    def record_with_lengths(*args):
        record = make_record(*args)
        flat = tf.nest.flatten(record)
        return record, tuple(
            tf.shape(x, out_type=tf.int64)[0] for x, var in zip(flat, variable) if var
        )

    def to_ragged(record, lengths):
        lengths = iter(lengths)
        flat = [
            tf.RaggedTensor.from_tensor(x, lengths=next(lengths)) if var else x
            for x, var in zip(tf.nest.flatten(record), variable)
        ]
        return tf.nest.pack_sequence_as(record, flat)

    def merge(window):
        return tf.nest.map_structure(lambda x: x.merge_dims(0, 1), window)

    length_padding = tuple(tf.constant(0, tf.int64) for var in variable if var)
    chunks = (
        dataset.map(record_with_lengths)
        .padded_batch(_CHUNK, padding_values=(padding_values, length_padding))
        .map(to_ragged)
    )
    num_chunks = -(-window_size // _CHUNK)
    return chunks.ragged_batch(num_chunks).map(merge)


def morishita_batches(
    dataset: tf.data.Dataset,
    strategy: str = "shuffle",
    batch_size: int = 64,
    batch_type: str = "examples",
    length_fn: LengthFn | None = None,
    sort_window_size: int = 100_000,
    padding_values=None,
    shuffle_examples: bool = True,
    shuffle_batches: bool = True,
    seed: int | None = None,
) -> tf.data.Dataset:
    """The mini-batch creation strategies of Morishita, Oda, Neubig et al. (2017).

    "An Empirical Study of Mini-Batch Creation Strategies for Neural Machine Translation":

    - ``"shuffle"``: batches of randomly ordered examples;
    - ``"src"``: sorted by source length; ``"tgt"``: by target length;
    - ``"src_tgt"``: by source length, ties broken by target length;
    - ``"tgt_src"``: by target length, ties broken by source length.

    The data is read in windows of about ``sort_window_size`` examples (a multiple of 256;
    the whole corpus when the window is at least its size); each window is shuffled
    (``shuffle_examples``, so that ties do not keep corpus order), sorted stably by the
    strategy's key, cut into consecutive batches, and the batches are shuffled
    (``shuffle_batches``). Both shuffles change every epoch; ``seed`` makes the sequence
    of epochs reproducible.

    Args:
        dataset: unbatched pairs; ``length_fn`` gives ``(source_length, target_length)``,
            by default from ``{"source", "target"}`` dicts or ``(source, target)`` tuples.
        batch_size: examples per batch, or the token budget for ``batch_type="tokens"``:
            consecutive examples are added while examples x longest length (source or
            target) stays within it.
        sort_window_size: examples sorted together.
        padding_values: as in ``padded_batch``.
        seed: seed of the example and batch shuffles.

    Returns:
        A dataset of padded batches; every example appears exactly once per epoch.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    _check_batch_type(batch_type, batch_size)
    length_fn = length_fn or default_length_fn
    values = _padding_values(dataset.element_spec, padding_values)

    def with_lengths(*args):
        element = args[0] if len(args) == 1 else args
        lengths = length_fn(element)
        if not isinstance(lengths, (tuple, list)) or len(lengths) != 2:
            raise ValueError("length_fn must return (source_length, target_length)")
        return {
            "element": element,
            "source_length": tf.cast(lengths[0], tf.int64),
            "target_length": tf.cast(lengths[1], tf.int64),
        }

    cardinality = int(dataset.cardinality())
    if cardinality > 0:  # a known size: no need for buffers larger than the data
        sort_window_size = min(sort_window_size, cardinality)
    # One random key per example drives both shuffles: tf.data's element shuffle costs tens
    # of microseconds per example, a key and an argsort in the window almost nothing.
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    records = tf.data.Dataset.zip(dataset, keys)

    def make_record(element, key):
        return {
            **with_lengths(*(element if isinstance(element, tuple) else (element,))),
            "random_key": key,
        }

    windows = _ragged_windows(records, make_record, sort_window_size, _record_padding(values))

    def per_window(window):
        source_lengths, target_lengths = window["source_length"], window["target_length"]
        random_keys = window["random_key"]
        count = tf.size(source_lengths, out_type=tf.int64)
        if shuffle_examples:
            permutation = tf.cast(tf.argsort(random_keys), tf.int64)
        else:
            permutation = tf.range(count)
        order = tf.gather(
            permutation,
            _sort_order(
                strategy,
                tf.gather(source_lengths, permutation),
                tf.gather(target_lengths, permutation),
            ),
        )
        longest = tf.gather(tf.maximum(source_lengths, target_lengths), order)
        if batch_type == "examples":
            batch_ids = tf.range(count) // batch_size
        else:
            batch_ids = _greedy_token_batches(longest, batch_size)
        members = tf.RaggedTensor.from_value_rowids(order, batch_ids)
        num_batches = members.nrows()
        if shuffle_batches:
            first_members = tf.gather(order, members.row_starts())
            batch_order = tf.cast(tf.argsort(tf.gather(random_keys, first_members)), tf.int64)
        else:
            batch_order = tf.range(num_batches)
        elements = window["element"]

        def gather(index):
            rows = members[batch_order[index]]
            return tf.nest.map_structure(
                lambda feature, pad: (
                    tf.gather(feature, rows).to_tensor(default_value=pad)
                    if isinstance(feature, tf.RaggedTensor)
                    else tf.gather(feature, rows)
                ),
                elements,
                values,
            )

        return tf.data.Dataset.range(num_batches).map(gather)

    return windows.flat_map(per_window)


# --------------------------------------------------------------------------- statistics


def padding_stats(
    batched_dataset: tf.data.Dataset,
    features: Sequence[str] | None = None,
    lengths_fn: Callable[[Any], Any] | None = None,
    padding_value=None,
    max_batches: int | None = None,
) -> dict[str, float]:
    """How much of a batched dataset is padding.

    By default every ``[batch, time]`` feature counts: its slots are ``batch x time`` and its
    real tokens are the entries that differ from ``padding_value`` (0, or ``""`` for
    strings; your vocabulary must not give id 0 to a real token). ``lengths_fn(batch)``
    instead returns the true lengths ``[batch]`` (or a structure of them) and works for
    features with trailing dimensions such as ``[batch, time, 88]``.

    Args:
        features: keys of a dict-valued batch to count (default: all of rank 2).
        max_batches: look at the first batches only.

    Returns:
        ``{"padded_fraction", "real_tokens", "total_tokens", "num_batches", "num_examples",
        "mean_batch_size", "max_batch_tokens"}`` where ``total_tokens`` counts padded slots
        and ``max_batch_tokens`` is the largest ``batch x time`` of one feature in a batch.
    """

    def sequences(batch_element):
        if features is not None:
            return [batch_element[key] for key in features]
        return [t for t in tf.nest.flatten(batch_element) if t.shape.rank == 2]

    def per_batch(*args):
        batch_element = args[0] if len(args) == 1 else args
        flat = tf.nest.flatten(batch_element)
        batch_rows = tf.cast(tf.shape(flat[0])[0], tf.int64)
        if lengths_fn is not None:
            lengths = tf.nest.flatten(lengths_fn(batch_element))
            widths = [tf.cast(tf.reduce_max(length), tf.int64) for length in lengths]
            real = tf.add_n([tf.reduce_sum(tf.cast(length, tf.int64)) for length in lengths])
            slots = [batch_rows * width for width in widths]
        else:
            tensors = sequences(batch_element)
            if not tensors:
                raise ValueError(
                    "no [batch, time] feature to measure; pass features= or lengths_fn="
                )
            real_counts, slots = [], []
            for tensor in tensors:
                pad = padding_value
                if pad is None:
                    pad = "" if tensor.dtype == tf.string else 0
                real_counts.append(
                    tf.reduce_sum(
                        tf.cast(tf.not_equal(tensor, tf.cast(pad, tensor.dtype)), tf.int64)
                    )
                )
                shape = tf.cast(tf.shape(tensor), tf.int64)
                slots.append(shape[0] * shape[1])
            real = tf.add_n(real_counts)
        return {
            "real": real,
            "total": tf.add_n(slots),
            "max_slots": tf.reduce_max(tf.stack(slots)),
            "rows": batch_rows,
        }

    dataset = batched_dataset
    if max_batches is not None:
        dataset = dataset.take(max_batches)
    zero = tf.constant(0, tf.int64)
    totals = dataset.map(per_batch).reduce(
        {"real": zero, "total": zero, "max_slots": zero, "rows": zero, "batches": zero},
        lambda acc, x: {
            "real": acc["real"] + x["real"],
            "total": acc["total"] + x["total"],
            "max_slots": tf.maximum(acc["max_slots"], x["max_slots"]),
            "rows": acc["rows"] + x["rows"],
            "batches": acc["batches"] + 1,
        },
    )
    totals = {key: int(value) for key, value in totals.items()}
    total = totals["total"]
    return {
        "padded_fraction": 1.0 - totals["real"] / total if total else 0.0,
        "real_tokens": totals["real"],
        "total_tokens": total,
        "num_batches": totals["batches"],
        "num_examples": totals["rows"],
        "mean_batch_size": totals["rows"] / totals["batches"] if totals["batches"] else 0.0,
        "max_batch_tokens": totals["max_slots"],
    }


def finalize(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The last step of every pipeline: ``prefetch(tf.data.AUTOTUNE)``."""
    return dataset.prefetch(tf.data.AUTOTUNE)
