"""The levers of the apps' serving signatures, shared by every export.

`ServingOptions` says which levers an export uses (`export --xla`); the plain options
(`ServingOptions.plain()`) are the signatures as they were before these levers, which
`python -m benchmarks.serving` measures them against:

- `xla`: the recurrent loops of the model (`layers.Recurrent(jit_compile=True)`, through
  `xla_loops`), a CRF's Viterbi decoding (`layers.CRF(jit_compile=True)`) and, where an app's whole search is free of string ops (translation,
  language-model generation), that search run as XLA programs. Each program is compiled
  once per bucket of shapes (`layers.loop.buckets`), at the first request of that shape;
  TF Serving compiles them only with `--xla_cpu_compilation_enabled=true`.
- `group_by_length`: a batched request runs as groups of rows of similar length
  (`by_length`), each group cut to its own longest row, so that short rows do not pay
  for the longest one's steps; the results come back in the request's order.

With either lever the outputs are those of the plain signature: the same tokens, tags and
strings, and scores equal to float32 rounding (XLA fuses the element-wise maths).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import keras
import tensorflow as tf

from layers import CRF, Recurrent
from layers.loop.buckets import bucket_size

#: Upper lengths of the groups of `by_length`: one group up to 32 steps, then an octave each.
GROUP_WIDTHS = tuple(2**k for k in range(5, 25))


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    """Which serving levers an export uses (see the module docstring)."""

    xla: bool = True
    group_by_length: bool = True

    @classmethod
    def plain(cls) -> ServingOptions:
        return cls(xla=False, group_by_length=False)


@contextlib.contextmanager
def xla_loops(model: keras.layers.Layer, enabled: bool = True) -> Iterator[None]:
    """Inside the block (while a serving function is traced), every `Recurrent` layer of
    `model` runs its inference loop with XLA, and every `CRF` its Viterbi decoding;
    afterwards they are as they were."""
    recurrent = [layer for layer in model._flatten_layers(include_self=True, recursive=True)
                 if isinstance(layer, (Recurrent, CRF))]  # fmt: skip
    previous = [layer.jit_compile for layer in recurrent]
    for layer in recurrent:
        layer.jit_compile = layer.jit_compile or enabled
    try:
        yield
    finally:
        for layer, value in zip(recurrent, previous):
            layer.jit_compile = value


def xla_function(fn: Callable, enabled: bool = True) -> Callable:
    """`fn` as one XLA program (`tf.function(jit_compile=True)`), or `fn` itself."""
    return tf.function(fn, jit_compile=True, autograph=False) if enabled else fn


def by_length(
    fn: Callable[[dict], dict],
    inputs: dict,
    lengths: tf.Tensor,
    output_signature: dict,
    pad_to_buckets: bool = False,
) -> dict:
    """`fn(inputs)` computed group by group over the rows of a batched request.

    Rows are grouped by the octave of their length (`GROUP_WIDTHS`: rows of up to 32
    steps form one group, then 33-64, 65-128, ...) and `fn` runs on each group in turn,
    its dense inputs cut to the group's longest row, then the rows of its outputs are put
    back in the request's order. (Finer groups, two an octave, cost more in calls than
    they saved in padding on short sentences.)

    Args:
        fn: `inputs -> outputs`, a dict of tensors with one row per input row, whose
            shapes other than the batch do not depend on the width of the inputs.
        inputs: dict of `[batch, time, ...]` tensors (dense ones are cut along `time`) or
            ragged tensors (their rows are taken as they are).
        lengths: `[batch]` int, the length of each row.
        output_signature: a `tf.TensorSpec` of one row of each output of `fn`.
        pad_to_buckets: cut the dense inputs to the group's bucket rather than its longest
            row, and pad the group to a bucket of rows (repeating its first row, so that
            decoders stop no later than for the real rows), so that an XLA-compiled `fn`
            meets only bucket shapes.
    Returns:
        `fn`'s outputs over all rows, in the request's order.
    """
    lengths = tf.cast(lengths, tf.int32)
    count = tf.size(lengths)
    buckets = tf.searchsorted(tf.constant(GROUP_WIDTHS, tf.int32), lengths)
    order = tf.argsort(buckets, stable=True)
    sorted_buckets = tf.gather(buckets, order)
    changes = tf.cast(tf.where(sorted_buckets[1:] != sorted_buckets[:-1])[:, 0], tf.int32)
    starts = tf.concat([[0], changes + 1], axis=0)
    ends = tf.concat([starts[1:], [count]], axis=0)

    def group(index):
        rows = order[starts[index] : ends[index]]
        width = tf.maximum(tf.reduce_max(tf.gather(lengths, rows)), 1)
        if pad_to_buckets:
            width = bucket_size(width)
            rows = tf.gather(rows, tf.range(bucket_size(tf.size(rows))) % tf.size(rows))
        selected = {}
        for key, value in inputs.items():
            value = tf.gather(value, rows)
            if not isinstance(value, tf.RaggedTensor) and value.shape.rank >= 2:
                value = value[:, :width]
                if pad_to_buckets:
                    extra = width - tf.shape(value)[1]
                    value = tf.pad(value, [[0, 0], [0, extra]] + [[0, 0]] * (value.shape.rank - 2))
            selected[key] = value
        outputs = fn(selected)
        return {key: value[: ends[index] - starts[index]] for key, value in outputs.items()}

    def grouped():
        def body(index, arrays):
            outputs = group(index)
            return index + 1, {key: arrays[key].write(index, outputs[key]) for key in arrays}

        arrays = {key: tf.TensorArray(spec.dtype, size=tf.size(starts), infer_shape=False)
                  for key, spec in output_signature.items()}  # fmt: skip
        _, arrays = tf.while_loop(lambda index, _: index < tf.size(starts), body, (0, arrays))
        inverse = tf.math.invert_permutation(order)
        outputs = {}
        for key, array in arrays.items():
            outputs[key] = tf.gather(array.concat(), inverse)
            outputs[key].set_shape(tf.TensorShape([None]).concatenate(output_signature[key].shape))
        return outputs

    # An empty request has no group: `fn` sees it as it is.
    return tf.cond(count > 0, grouped, lambda: fn(inputs))


def serving_options(args) -> ServingOptions:
    """The levers of `export --xla true|false` (`apps.common.cli.export_arguments`)."""
    return ServingOptions(xla=getattr(args, "xla", "true") == "true")
