"""Shape buckets: the few shapes an XLA program is compiled for.

XLA compiles a program for every shape it meets. A server sees every sequence length and
batch size, so an XLA loop fed its inputs as they come compiles at nearly every request
(~1-3 s each on a CPU). `bucket_size` rounds a size up to the next bucket, 2^k or
3 * 2^(k-1) (1, 2, 3, 4, 6, 8, 12, 16, 24, ...): at most a third of the padded work is
padding, and sizes up to n need about 2 log2(n) programs. `pad_to_buckets` pads the
time-major inputs of `run_steps` so; the padded time steps and batch rows are masked, so
the real rows' states and outputs are those of the unpadded call.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["BUCKET_SIZES", "bucket_size", "compiled_on_buckets", "pad_to_buckets"]

#: 1, 2, 3, 4, 6, 8, 12, ... up to 2^24; larger sizes are their own bucket.
BUCKET_SIZES = tuple(sorted({1, 2, *(2**k for k in range(1, 25)), *(3 * 2**k for k in range(0, 24))}))


def bucket_size(size) -> tf.Tensor:
    """The smallest bucket >= `size` (a scalar integer, Python or tensor), as int32;
    `size` itself beyond the largest bucket (and for sizes <= 0)."""
    size = tf.cast(size, tf.int32)
    table = tf.constant(BUCKET_SIZES, tf.int32)
    index = tf.searchsorted(table, size[None], side="left")[0]
    bucket = tf.gather(table, tf.minimum(index, len(BUCKET_SIZES) - 1))
    return tf.where(tf.logical_and(size > 0, index < len(BUCKET_SIZES)), bucket, size)


def _padded_size(size) -> tf.Tensor:
    """`bucket_size`, at least 1: XLA cannot slice a step or row out of an empty
    dimension, so empty inputs run as one masked step or row (cut off afterwards)."""
    return tf.maximum(bucket_size(size), 1)


def pad_to_buckets(projected, mask, initial_states, initial_output):
    """`(projected [T', B', P], mask [T', B'], initial_states, initial_output)` padded to
    bucket sizes T' >= T and B' >= B (at least 1): new steps and rows are masked (a row of padding is
    fully masked) and zero. Slice the results back with `[:T, :B]`."""
    num_steps, batch = tf.shape(projected)[0], tf.shape(projected)[1]
    padded_steps, padded_batch = _padded_size(num_steps), _padded_size(batch)
    extra_steps, extra_rows = padded_steps - num_steps, padded_batch - batch
    if mask is None:
        mask = tf.ones([num_steps, batch], tf.bool)
    projected = tf.pad(projected, [[0, extra_steps], [0, extra_rows], [0, 0]])
    mask = tf.pad(mask, [[0, extra_steps], [0, extra_rows]])
    initial_states = [tf.pad(state, [[0, extra_rows], [0, 0]]) for state in initial_states]
    initial_output = tf.pad(initial_output, [[0, extra_rows], [0, 0]])
    return projected, mask, initial_states, initial_output


def compiled_on_buckets(fn, sequences, mask):
    """`fn(sequences, mask)` as an XLA program on batch-major `[B, T, ...]` `sequences` and
    a `[B, T]` mask padded to bucket sizes (padding masked, zero), its outputs cut back:
    `[:B, :T]` for outputs of rank 2 or more, `[:B]` for vectors. For functions whose
    masked steps and rows do not change the results of the others (a CRF's decoding)."""
    sequences = tf.convert_to_tensor(sequences)
    batch, num_steps = tf.shape(sequences)[0], tf.shape(sequences)[1]
    extra_rows, extra_steps = _padded_size(batch) - batch, _padded_size(num_steps) - num_steps
    padding = [[0, extra_rows], [0, extra_steps]]
    sequences = tf.pad(sequences, padding + [[0, 0]] * (sequences.shape.rank - 2))
    mask = tf.pad(tf.cast(mask, tf.bool), padding)
    outputs = tf.function(fn, jit_compile=True, autograph=False)(sequences, mask)
    return tf.nest.map_structure(
        lambda output: output[:batch, :num_steps] if output.shape.rank >= 2 else output[:batch], outputs
    )
