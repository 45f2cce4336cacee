"""The hand-written backward pass: a reverse loop of per-step vector-Jacobian products.

At each step (in reverse) the vector-Jacobian product of that one step is taken by
automatic differentiation (`tf.GradientTape` on `step` alone, so every cell gets it), its
recurrent products replayed from the forward pass by `BackwardHooks`, so that only their
input gradient `g R^T` is a matrix product inside the loop. The recurrent weight gradients
`dR = sum_t x_t^T g_t` are then one `[in, T*B] x [T*B, width]` product each after the loop
(`kernel_gradients`), and the gradient of the projected inputs leaves as one `[T, B, P]`
tensor, so that the input-side gradients (`dX = dP W^T`, `dW = X^T dP`) are single matrix
products as well.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["backward_loop", "kernel_gradients", "tape_step_vjp"]


def tape_step_vjp(step_fn, hooks, direct_variables):
    """The vector-Jacobian product of one step by `tf.GradientTape` on `step_fn` alone, its
    recurrent products replayed by `hooks` (`BackwardHooks`, which `step_fn` uses).

    Returns `step_vjp(time, projected_t, previous_states, stored_products, d_output,
    d_new_states) -> (d_projected_t, d_previous_states, product_inputs, d_products,
    d_direct_variables)`.
    """

    def step_vjp(time, projected_t, previous, stored, d_output, d_new_states):
        num_states, num_products = len(previous), len(stored)
        hooks.start_step(time, stored)
        with tf.GradientTape() as tape:
            tape.watch(projected_t)
            tape.watch(previous)
            output, new_states = step_fn(projected_t, previous)
        sources = [projected_t, *previous, *hooks.outputs, *direct_variables]
        grads = tape.gradient(
            [output, *new_states],
            sources,
            output_gradients=[d_output, *d_new_states],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return (
            grads[0],
            grads[1 : 1 + num_states],
            list(hooks.inputs),
            grads[1 + num_states : 1 + num_states + num_products],
            grads[1 + num_states + num_products :],
        )

    return step_vjp


def backward_loop(
    step_vjp,
    projected,
    initial_states,
    records,
    mask,
    d_outputs,
    d_last_output,
    d_final_states,
    direct_variables,
):
    """The reverse loop over `step_vjp` (`tape_step_vjp`), given the forward loop's
    `records` and the gradients of its results.

    Returns `(d_projected [T, B, P], d_initial_states, product_inputs, product_grads,
    d_direct_variables)`, where `product_inputs[i]` and `product_grads[i]` are `[T, B, .]`
    (the inputs of recurrent product i and the gradients of its outputs).
    """
    states_tas, products_tas = records
    num_steps = tf.shape(projected)[0]
    num_products = len(products_tas)
    d_projected_ta = tf.TensorArray(
        projected.dtype, size=num_steps, element_shape=projected.shape[1:]
    )
    inputs_tas = [tf.TensorArray(projected.dtype, size=num_steps) for _ in range(num_products)]
    grads_tas = [tf.TensorArray(projected.dtype, size=num_steps) for _ in range(num_products)]
    d_direct0 = [tf.zeros_like(v) for v in direct_variables]
    # Found while tracing the body: which product inputs are states entering the step, and
    # which product gradients are the gradient of the projected inputs (then not stored).
    aliases = {"inputs": [None] * num_products, "grads": [False] * num_products}

    def body(time, d_states, d_last, d_direct, d_projected_ta, inputs_tas, grads_tas):
        time = time - 1
        d_states, d_direct = list(d_states), list(d_direct)
        d_output = d_last
        if d_outputs is not None:
            d_output = d_output + d_outputs[time]
        if mask is not None:
            valid = mask[time][:, None]
            # Masked steps pass the state (and the last output) through unchanged.
            d_output = tf.where(valid, d_output, tf.zeros_like(d_output))
            d_last = tf.where(valid, tf.zeros_like(d_last), d_last)
            d_new_states = [tf.where(valid, d, tf.zeros_like(d)) for d in d_states]
            d_passed = [tf.where(valid, tf.zeros_like(d), d) for d in d_states]
        else:
            d_last = tf.zeros_like(d_last)
            d_new_states, d_passed = d_states, None
        projected_t = projected[time]
        previous = [ta.read(time) for ta in states_tas]
        for state, template in zip(previous, initial_states):
            state.set_shape(template.shape)
        stored = [ta.read(time) for ta in products_tas]
        d_projected_t, d_previous, product_inputs, d_products, d_direct_t = step_vjp(
            time, projected_t, previous, stored, d_output, d_new_states
        )
        if d_passed is not None:
            d_previous = [a + b for a, b in zip(d_previous, d_passed)]
        new_inputs_tas, new_grads_tas = [], []
        for index in range(num_products):
            inputs, d_product = product_inputs[index], d_products[index]
            state_index = next((k for k, s in enumerate(previous) if s is inputs), None)
            aliases["inputs"][index] = state_index
            aliases["grads"][index] = d_product is d_projected_t
            ta = inputs_tas[index]
            new_inputs_tas.append(ta if state_index is not None else ta.write(time, inputs))
            ta = grads_tas[index]
            new_grads_tas.append(ta if d_product is d_projected_t else ta.write(time, d_product))
        d_direct = [a + tf.convert_to_tensor(b) for a, b in zip(d_direct, d_direct_t)]
        for new, old in zip(d_previous, d_states):
            new.set_shape(old.shape)
        return (
            time,
            list(d_previous),
            d_last,
            d_direct,
            d_projected_ta.write(time, d_projected_t),
            new_inputs_tas,
            new_grads_tas,
        )

    _, d_states0, _, d_direct, d_projected_ta, inputs_tas, grads_tas = tf.while_loop(
        lambda time, *_: time > 0,
        body,
        (
            num_steps,
            list(d_final_states),
            d_last_output,
            d_direct0,
            d_projected_ta,
            inputs_tas,
            grads_tas,
        ),
        maximum_iterations=num_steps,
    )
    d_projected = d_projected_ta.stack()
    d_projected.set_shape(projected.shape)
    stacked_states = {}
    product_inputs, product_grads = [], []
    for index in range(num_products):
        state_index = aliases["inputs"][index]
        if state_index is None:
            product_inputs.append(inputs_tas[index].stack())
        else:
            if state_index not in stacked_states:
                stacked_states[state_index] = states_tas[state_index].stack()
            product_inputs.append(stacked_states[state_index])
        product_grads.append(d_projected if aliases["grads"][index] else grads_tas[index].stack())
    return d_projected, list(d_states0), product_inputs, product_grads, list(d_direct)


def kernel_gradients(plan, kernel_values, product_inputs, product_grads, matmul_dtype) -> dict:
    """The recurrent weight gradients, `id(kernel) -> [in, width]` for every kernel of
    `plan`: one `[in, T*B] x [T*B, width]` product per recurrent product (in `matmul_dtype`
    when given), padded to the kernel's full width where the product used some columns."""
    d_kernels = {}
    for (kernel, columns), inputs_all, grads_all in zip(
        plan.products, product_inputs, product_grads
    ):
        flat_inputs = tf.reshape(inputs_all, (-1, tf.shape(inputs_all)[-1]))
        flat_grads = tf.reshape(grads_all, (-1, tf.shape(grads_all)[-1]))
        if matmul_dtype is not None:
            flat_inputs = tf.cast(flat_inputs, matmul_dtype)
            flat_grads = tf.cast(flat_grads, matmul_dtype)
        d_slice = tf.matmul(flat_inputs, flat_grads, transpose_a=True)
        if columns is not None:
            full_width = kernel_values[id(kernel)].shape[-1]
            d_slice = tf.pad(d_slice, [[0, 0], [columns[0], full_width - columns[1]]])
        previous = d_kernels.get(id(kernel))
        d_kernels[id(kernel)] = d_slice if previous is None else previous + d_slice
    return d_kernels
