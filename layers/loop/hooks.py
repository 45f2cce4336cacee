"""The step hooks inside the loops: they replay a `StepPlan`.

Inside the loops a step's recurrent products use kernels sliced (and cast) once before the
loop, its random draws read noise drawn for every step before the loop, and the products
must come in the order and with the kernels that discovery traced. The forward loop keeps
each step's products (`ForwardHooks`); the backward loop replays them instead of
computing them again (`BackwardHooks`).
"""

from __future__ import annotations

import tensorflow as tf

from layers.cell_base import StepHooks

__all__ = ["BackwardHooks", "ForwardHooks", "LoopHooks", "hooked", "matmul"]


def matmul(inputs, kernel):
    """`inputs @ kernel` in the kernel's dtype (bfloat16 under mixed precision), returned in
    the dtype of `inputs` (the loop's float32)."""
    if inputs.dtype == kernel.dtype:
        return tf.matmul(inputs, kernel)
    return tf.cast(tf.matmul(tf.cast(inputs, kernel.dtype), kernel), inputs.dtype)


def hooked(step_fn, use_hooks, hooks):
    """`step_fn` run with `hooks` (`use_hooks` is the cell's `using_step_hooks`)."""

    def step(projected_t, states):
        with use_hooks(hooks):
            return step_fn(projected_t, states)

    return step


class LoopHooks(StepHooks):
    """Products with pre-sliced kernels, noise drawn in advance, the traced order checked."""

    def __init__(self, plan, kernels, noise):
        self.plan = plan
        self.kernels = kernels  # per product: the [in, width] kernel slice
        self.noise = noise  # per draw: the [T, B, width] noise
        self.time = None
        self.product_index = 0
        self.draw_index = 0

    def start_step(self, time):
        self.time = time
        self.product_index = 0
        self.draw_index = 0

    def next_product(self, kernel) -> int:
        index = self.product_index
        self.product_index += 1
        if index >= len(self.plan.products) or kernel is not self.plan.products[index][0]:
            raise RuntimeError(
                "The cell's `step` made its recurrent products in a different order or with "
                "other kernels than when it was first traced."
            )
        return index

    def matmul(self, inputs, kernel, columns=None):
        return matmul(inputs, self.kernels[self.next_product(kernel)])

    def uniform_like(self, like, seed_generator):
        index = self.draw_index
        self.draw_index += 1
        return self.noise[index][self.time]


class ForwardHooks(LoopHooks):
    """Also keeps the outputs of the step's products (what the backward pass replays)."""

    def start_step(self, time):
        super().start_step(time)
        self.products = []

    def matmul(self, inputs, kernel, columns=None):
        product = super().matmul(inputs, kernel, columns)
        self.products.append(product)
        return product


class BackwardHooks(LoopHooks):
    """Replays the stored products; their input gradient is `g kernel^T`. Keeps the inputs
    and the (replayed) outputs of the step's products for the per-step tape."""

    def __init__(self, plan, kernels, noise, kernels_transposed):
        super().__init__(plan, kernels, noise)
        self.kernels_transposed = kernels_transposed
        self.stored = None
        self.inputs = []
        self.outputs = []

    def start_step(self, time, stored):
        super().start_step(time)
        self.stored = stored
        self.inputs = []
        self.outputs = []

    def matmul(self, inputs, kernel, columns=None):
        index = self.next_product(kernel)
        stored, kernel_t = self.stored[index], self.kernels_transposed[index]

        @tf.custom_gradient
        def replay(inputs):
            def grad(upstream):
                return matmul(upstream, kernel_t)

            return tf.identity(stored), grad

        product = replay(inputs)
        self.inputs.append(inputs)
        self.outputs.append(product)
        return product
