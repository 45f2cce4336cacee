"""The forward loop: a step function over time-major inputs with `tf.while_loop`.

Per-step inputs are read as `values[time]` (a slice along the first axis, which shares the
buffer) and per-step records are `TensorArray` writes (which keep a reference): the only
copies of whole sequences are the stacks that the batched products need. (Stacking the
records into `[T, B, .]` buffers instead was measured and did not pay: `layers/README.md`.)
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["forward_loop"]


def forward_loop(
    step_fn,
    projected,
    initial_states,
    initial_output,
    mask,
    return_sequences,
    hooks=None,
    record=False,
    differentiable=False,
):
    """`(last_output, outputs or None, final_states, records)`.

    `step_fn(projected_t, states) -> (output, new_states list)`; `mask`, `return_sequences`
    as in `run_steps`.

    `hooks`: the `LoopHooks` that `step_fn` uses (told the time of each step). With
    `record` (and `ForwardHooks`), `records` is `(states_tas, products_tas)`: per time
    step, the states entering the step and the outputs of each recurrent product (what the
    backward pass replays), as `TensorArray`s; else None.

    `differentiable`: TensorFlow will differentiate this loop, so the inputs are read from
    a `TensorArray` (the gradient of a slice `projected[time]` inside a loop would be a
    zero-padded `[T, B, P]` tensor at every step).
    """
    num_steps = tf.shape(projected)[0]
    if differentiable:
        projected_ta = tf.TensorArray(
            projected.dtype, size=num_steps, element_shape=projected.shape[1:]
        ).unstack(projected)
        read_projected = projected_ta.read
    else:

        def read_projected(time):
            return projected[time]

    outputs_ta = tf.TensorArray(
        initial_output.dtype,
        size=num_steps if return_sequences else 0,
        element_shape=initial_output.shape,
    )
    record = record and hooks is not None
    # Read by the backward pass (and then stacked): eager arrays must not clear on read.
    states_tas = [
        tf.TensorArray(
            s.dtype,
            size=num_steps if record else 0,
            element_shape=s.shape,
            clear_after_read=False,
        )
        for s in initial_states
    ]
    num_products = len(hooks.plan.products) if record else 0
    products_tas = [
        tf.TensorArray(projected.dtype, size=num_steps, clear_after_read=False)
        for _ in range(num_products)
    ]

    def body(time, last_output, states, outputs_ta, states_tas, products_tas):
        states = list(states)
        if hooks is not None:
            hooks.start_step(time)
        if record:
            states_tas = [ta.write(time, s) for ta, s in zip(states_tas, states)]
        output, new_states = step_fn(read_projected(time), states)
        if record:
            products_tas = [ta.write(time, p) for ta, p in zip(products_tas, hooks.products)]
        output = tf.cast(output, last_output.dtype)
        new_states = [tf.cast(new, old.dtype) for new, old in zip(new_states, states)]
        if mask is not None:
            valid = mask[time][:, None]
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
        return time + 1, last_output, new_states, outputs_ta, states_tas, products_tas

    carry = (
        tf.constant(0, tf.int32),
        initial_output,
        list(initial_states),
        outputs_ta,
        states_tas,
        products_tas,
    )
    _, last_output, final_states, outputs_ta, states_tas, products_tas = tf.while_loop(
        lambda time, *_: time < num_steps,
        body,
        carry,
        maximum_iterations=num_steps,
    )
    outputs = None
    if return_sequences:
        outputs = outputs_ta.stack()
        outputs.set_shape(projected.shape[:1].concatenate(initial_output.shape))
    records = (states_tas, products_tas) if record else None
    return last_output, outputs, list(final_states), records
