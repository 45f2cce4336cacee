"""The loops of a step whose recurrent products and random draws are known (a `StepPlan`):
one for inference, and one inside a `tf.custom_gradient` with the hand-written backward
pass. Both run over kernels sliced (and cast) once before the loop and noise drawn for all
steps before it, so that the backward pass replays exactly the forward pass's noise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import tensorflow as tf

from layers.loop.backward import backward_loop, kernel_gradients, tape_step_vjp
from layers.loop.discovery import StepPlan
from layers.loop.forward import forward_loop
from layers.loop.framework import tf_variable
from layers.loop.hooks import BackwardHooks, ForwardHooks, LoopHooks, hooked

__all__ = ["PlannedLoop", "loop_constants"]


def loop_constants(plan, kernel_values, projected, matmul_dtype):
    """`(kernel_slices, noise)`: per product the kernel slice (cast to `matmul_dtype`), per
    draw the `[T, B, width]` noise of all steps (Keras' draw, honouring the cell's
    `SeedGenerator`)."""
    kernel_slices = []
    for kernel, columns in plan.products:
        value = kernel_values[id(kernel)]
        if columns is not None:
            value = value[:, columns[0] : columns[1]]
        if matmul_dtype is not None:
            value = tf.cast(value, matmul_dtype)
        kernel_slices.append(value)
    num_steps, batch = tf.shape(projected)[0], tf.shape(projected)[1]
    noise = [
        tf.convert_to_tensor(
            keras.random.uniform((num_steps, batch, width), dtype=dtype, seed=generator)
        )
        for width, dtype, generator in plan.draws
    ]
    return kernel_slices, noise


def _dense(gradient, like):
    """An incoming gradient as a dense tensor: zeros for an unused result (None), the dense
    form of IndexedSlices (a gather of the outputs)."""
    return tf.zeros_like(like) if gradient is None else tf.convert_to_tensor(gradient)


@dataclasses.dataclass
class PlannedLoop:
    """The inference loop and the fast-gradient loop of one `run_steps` call (its
    arguments, with the step's `plan`)."""

    step_fn: Callable
    use_hooks: Callable
    plan: StepPlan
    initial_output: tf.Tensor
    mask: tf.Tensor | None
    return_sequences: bool
    matmul_dtype: str | None

    def _forward(self, hooks_class, kernel_values, projected, initial_states, record):
        """The forward loop with `hooks_class` hooks: `(kernel_slices, noise, results)`,
        `results` being those of `forward_loop`."""
        kernel_slices, noise = loop_constants(
            self.plan, kernel_values, projected, self.matmul_dtype
        )
        hooks = hooks_class(self.plan, kernel_slices, noise)
        results = forward_loop(
            hooked(self.step_fn, self.use_hooks, hooks),
            projected,
            initial_states,
            self.initial_output,
            self.mask,
            self.return_sequences,
            hooks=hooks,
            record=record,
        )
        return kernel_slices, noise, results

    def inference(self, projected, initial_states):
        """The forward loop with pre-sliced (and pre-cast) kernels; nothing recorded."""
        kernel_values = {id(k): tf.convert_to_tensor(k) for k in self.plan.kernels()}
        _, _, (last_output, outputs, final_states, _) = self._forward(
            LoopHooks, kernel_values, projected, initial_states, record=False
        )
        return last_output, outputs, final_states

    def fast_gradient(self, projected, initial_states):
        """The forward loop inside a `tf.custom_gradient` with the hand-written backward pass."""
        plan, return_sequences = self.plan, self.return_sequences
        num_states = len(initial_states)
        # Tensors among the kernels (e.g. a kernel with weight drop applied) are inputs of the
        # custom gradient, so that their gradient flows on to the variables they were made from.
        kernels = plan.kernels()
        tensor_kernels = [k for k in kernels if tf_variable(k) is None]

        @tf.custom_gradient
        def loop(projected, *args):
            states0 = list(args[:num_states])
            kernel_values = {id(k): v for k, v in zip(tensor_kernels, args[num_states:])}
            for kernel in kernels:
                if id(kernel) not in kernel_values:
                    kernel_values[id(kernel)] = tf.convert_to_tensor(kernel)
            kernel_slices, noise, (last_output, outputs, final_states, records) = self._forward(
                ForwardHooks, kernel_values, projected, states0, record=True
            )

            def grad(d_last_output, *rest, variables=None):
                d_outputs = rest[0] if return_sequences else None
                if d_outputs is not None:  # None: the outputs were not used
                    d_outputs = tf.convert_to_tensor(d_outputs)
                d_final = rest[1:] if return_sequences else rest
                d_final = [_dense(d, s) for d, s in zip(d_final, states0)]
                d_last_output = _dense(d_last_output, self.initial_output)
                kernels_transposed = [tf.transpose(k) for k in kernel_slices]
                direct = plan.direct_variables
                hooks = BackwardHooks(plan, kernel_slices, noise, kernels_transposed)
                step_vjp = tape_step_vjp(hooked(self.step_fn, self.use_hooks, hooks), hooks, direct)
                d_projected, d_states0, inputs_seq, grads_seq, d_direct = backward_loop(
                    step_vjp,
                    projected,
                    states0,
                    records,
                    self.mask,
                    d_outputs,
                    d_last_output,
                    d_final,
                    direct,
                )
                d_kernels = kernel_gradients(
                    plan, kernel_values, inputs_seq, grads_seq, self.matmul_dtype
                )
                d_variables = [
                    self._variable_gradient(variable, d_kernels, d_direct)
                    for variable in variables or []
                ]
                d_tensor_kernels = [
                    tf.cast(d_kernels[id(k)], kernel_values[id(k)].dtype) for k in tensor_kernels
                ]
                return [d_projected, *d_states0, *d_tensor_kernels], d_variables

            results = [last_output] + ([outputs] if return_sequences else []) + final_states
            return results, grad

        results = loop(
            projected, *initial_states, *[tf.convert_to_tensor(k) for k in tensor_kernels]
        )
        last_output = results[0]
        outputs = results[1] if return_sequences else None
        final_states = list(results[2:] if return_sequences else results[1:])
        return last_output, outputs, final_states

    def _variable_gradient(self, variable, d_kernels, d_direct):
        """The gradient of a variable read in the loop: as a recurrent kernel, directly by
        the step, or both (None if neither), in the variable's dtype (mixed precision)."""
        gradient = None
        for kernel in self.plan.kernels():
            if tf_variable(kernel) is variable:
                gradient = d_kernels[id(kernel)]
        for direct_variable, d_value in zip(self.plan.direct_variables, d_direct):
            if direct_variable is variable:
                gradient = d_value if gradient is None else gradient + d_value
        if gradient is not None and gradient.dtype != variable.dtype:
            gradient = tf.cast(gradient, variable.dtype)
        return gradient
