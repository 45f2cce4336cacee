"""The TensorFlow-only parts of `layers/`: the time loop of `Recurrent`.

Everything else in `layers/` uses `keras.ops`; this module is the one place that calls
TensorFlow directly (`tf.while_loop` with `TensorArray`s, which handles sequences whose
length is only known at run time, in eager mode, in `tf.function` and in SavedModels).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf


def run_steps(
    step_fn: Callable,
    projected,
    initial_states: Sequence,
    initial_output,
    mask=None,
    go_backwards: bool = False,
    return_sequences: bool = True,
):
    """Runs `step_fn` over time-major projected inputs.

    Args:
        step_fn: `(projected_t [B, P], states list) -> (output [B, O], new_states list)`.
        projected: `[T, B, P]`, the inputs already projected for every step.
        initial_states: List of `[B, S_k]` tensors.
        initial_output: `[B, O]` output reported when no step is valid (zeros).
        mask: Optional `[T, B]` boolean; a masked step leaves the states and the carried
            last output unchanged and writes zeros to the output sequence.
        go_backwards: Process the time steps in reverse order (outputs are in processing
            order, as in `keras.layers.RNN`).
        return_sequences: Whether to collect the outputs of every step.

    Returns:
        `(last_output [B, O], outputs [T, B, O] or None, final_states list)`.
    """
    if go_backwards:
        projected = tf.reverse(projected, axis=[0])
        if mask is not None:
            mask = tf.reverse(mask, axis=[0])
    num_steps = tf.shape(projected)[0]
    inputs_ta = tf.TensorArray(
        projected.dtype, size=num_steps, element_shape=projected.shape[1:]
    ).unstack(projected)
    mask_ta = None
    if mask is not None:
        mask = tf.cast(mask, tf.bool)
        mask_ta = tf.TensorArray(tf.bool, size=num_steps, element_shape=mask.shape[1:]).unstack(
            mask
        )
    initial_states = [tf.convert_to_tensor(state) for state in initial_states]
    initial_output = tf.convert_to_tensor(initial_output)
    outputs_ta = tf.TensorArray(
        initial_output.dtype,
        size=num_steps if return_sequences else 0,
        element_shape=initial_output.shape,
    )

    def body(time, last_output, states, outputs_ta):
        output, new_states = step_fn(inputs_ta.read(time), list(states))
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        output = tf.cast(output, last_output.dtype)
        new_states = [tf.cast(new, old.dtype) for new, old in zip(new_states, states)]
        if mask_ta is not None:
            valid = mask_ta.read(time)[:, None]
            new_states = [tf.where(valid, new, old) for new, old in zip(new_states, states)]
            last_output = tf.where(valid, output, last_output)
            written = tf.where(valid, output, tf.zeros_like(output))
        else:
            last_output = output
            written = output
        if return_sequences:
            outputs_ta = outputs_ta.write(time, written)
        for new, old in zip(new_states, states):
            new.set_shape(old.shape)
        last_output.set_shape(initial_output.shape)
        return time + 1, last_output, new_states, outputs_ta

    _, last_output, final_states, outputs_ta = tf.while_loop(
        lambda time, *_: time < num_steps,
        body,
        (tf.constant(0, tf.int32), initial_output, initial_states, outputs_ta),
        maximum_iterations=num_steps,
    )
    outputs = None
    if return_sequences:
        outputs = outputs_ta.stack()
        outputs.set_shape(projected.shape[:1].concatenate(initial_output.shape))
    return last_output, outputs, list(final_states)
