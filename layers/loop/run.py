"""`run_steps`: which loop runs a step over a sequence, and with which gradient."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from layers.loop.buckets import pad_to_buckets
from layers.loop.discovery import discover
from layers.loop.forward import forward_loop
from layers.loop.framework import gradient_may_be_recorded, replicated
from layers.loop.planned import PlannedLoop

__all__ = ["run_steps"]


def run_steps(
    step_fn: Callable,
    projected,
    initial_states: Sequence,
    initial_output,
    mask=None,
    go_backwards: bool = False,
    return_sequences: bool = True,
    use_hooks: Callable | None = None,
    nondifferentiable: Sequence = (),
    matmul_dtype=None,
    jit_compile: bool = False,
    fast_backward: bool = True,
):
    """Runs `step_fn` over time-major projected inputs.

    Args:
        step_fn: `(projected_t [B, P], states list) -> (output [B, O], new_states)`.
        projected: `[T, B, P]`, the inputs already projected for every step.
        initial_states: List of `[B, S_k]` tensors.
        initial_output: `[B, O]` output reported when no step is valid (zeros).
        mask: Optional `[T, B]` boolean; a masked step leaves the states and the carried
            last output unchanged and writes zeros to the output sequence.
        go_backwards: Process the time steps in reverse order (outputs are in processing
            order, as in `keras.layers.RNN`).
        return_sequences: Whether to collect the outputs of every step.
        use_hooks: `hooks -> context manager` under which `step_fn` routes its recurrent
            products and random draws through `hooks` (a cell's `using_step_hooks`; the
            contract is in the docstring of `layers.loop`). With it the loop runs over
            pre-sliced kernels, and when a gradient may be taken it gets the hand-written
            backward pass; without it, TensorFlow differentiates the `tf.while_loop`.
        nondifferentiable: Tensors the step reads that need no gradient (dropout masks).
        matmul_dtype: Dtype of the recurrent products (e.g. "bfloat16" for mixed precision:
            the products run in it, the states and the element-wise maths in the dtype of
            `projected`); None for the dtype of the kernels.
        jit_compile: Compile the loop with XLA when no gradient is being recorded. The
            inputs are padded (with masked steps and rows) to bucket sizes of time and batch
            (`layers.loop.buckets`), so that the XLA programs compiled stay few.
        fast_backward: Use the hand-written backward pass where the step allows it (False:
            TensorFlow differentiates the `tf.while_loop`; the reference it is tested
            against, and the baseline it is measured against).

    Returns:
        `(last_output [B, O], outputs [T, B, O] or None, final_states list)`.
    """
    projected = tf.convert_to_tensor(projected)
    if go_backwards:
        projected = tf.reverse(projected, axis=[0])
        if mask is not None:
            mask = tf.reverse(mask, axis=[0])
    if mask is not None:
        mask = tf.cast(mask, tf.bool)
    initial_states = [tf.convert_to_tensor(state) for state in initial_states]
    initial_output = tf.convert_to_tensor(initial_output)
    recording = gradient_may_be_recorded()

    def step(projected_t, states):
        output, new_states = step_fn(projected_t, states)
        return output, list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]

    def run(projected, mask, initial_states, initial_output):
        if use_hooks is not None:
            plan = discover(step, use_hooks, projected, initial_states, nondifferentiable)
            if plan.supported:
                planned = PlannedLoop(
                    step, use_hooks, plan, initial_output, mask, return_sequences, matmul_dtype
                )
                if not recording:
                    return planned.inference(projected, initial_states)
                if fast_backward and not replicated():
                    return planned.fast_gradient(projected, initial_states)
        last_output, outputs, final_states, _ = forward_loop(
            step,
            projected,
            initial_states,
            initial_output,
            mask,
            return_sequences,
            differentiable=recording,
        )
        return last_output, outputs, final_states

    if not (jit_compile and not recording):
        return run(projected, mask, initial_states, initial_output)
    # XLA for the forward loop only (see `Recurrent`), compiled once per bucket of shapes.
    num_steps, batch = tf.shape(projected)[0], tf.shape(projected)[1]
    last_output, outputs, final_states = tf.function(run, jit_compile=True, autograph=False)(
        *pad_to_buckets(projected, mask, initial_states, initial_output)
    )

    def unpadded(tensor, time_major: bool):  # the real steps and rows, with static shapes
        tensor = tensor[:num_steps, :batch] if time_major else tensor[:batch]
        known = projected.shape[:2] if time_major else projected.shape[1:2]
        tensor.set_shape(known.concatenate(tensor.shape[len(known) :]))
        return tensor

    outputs = None if outputs is None else unpadded(outputs, True)
    return unpadded(last_output, False), outputs, [unpadded(s, False) for s in final_states]
