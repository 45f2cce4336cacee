"""Discovery: what one step of a cell does, found by tracing it once.

The step is traced into a `tf.function` graph with `DiscoveryHooks`, which record every
recurrent product (`hooks.matmul(inputs, kernel, columns)`) and every per-step random draw
(`hooks.uniform_like(like, seed_generator)`) and return zeros in their place. The graph
then tells whether the step can be replayed by the hand-written backward pass: it must
draw no random numbers and assign no variables other than through the hooks, and every
floating-point tensor it captures must be one of its recurrent kernels or one of the
tensors the caller declared `nondifferentiable` (dropout masks).
"""

from __future__ import annotations

import tensorflow as tf

from layers.cell_base import StepHooks
from layers.loop.framework import tf_variable

__all__ = ["DiscoveryHooks", "StepPlan", "discover"]

_STATEFUL_OP_TYPES = ("AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp")


class StepPlan:
    """What one step does.

    Attributes:
        products: Per recurrent product, in the order the step makes them,
            `(kernel, columns)`: the kernel object (a variable or a tensor) and the column
            range `(start, stop)` of it that the product uses (None: all columns).
        draws: Per random draw, `(width, dtype, seed_generator)`.
        direct_variables: The trainable floating-point variables the step reads itself
            (biases, layer-norm gains, peepholes): their gradient comes from the per-step
            vector-Jacobian product.
        unsupported: Why the step cannot be replayed ("" when it can).
    """

    def __init__(self, products=(), draws=(), direct_variables=(), unsupported: str = ""):
        self.products = list(products)
        self.draws = list(draws)
        self.direct_variables = list(direct_variables)
        self.unsupported = unsupported

    @property
    def supported(self) -> bool:
        return not self.unsupported

    def kernels(self) -> list:
        """The recurrent kernels of the products, each once, in order of first use."""
        kernels, seen = [], set()
        for kernel, _ in self.products:
            if id(kernel) not in seen:
                seen.add(id(kernel))
                kernels.append(kernel)
        return kernels


class DiscoveryHooks(StepHooks):
    """Records which recurrent products and random draws a step makes, touching neither."""

    def __init__(self):
        self.products = []  # (kernel object, columns)
        self.draws = []  # (width, dtype, seed generator)

    def matmul(self, inputs, kernel, columns=None):
        self.products.append((kernel, columns))
        width = kernel.shape[-1] if columns is None else columns[1] - columns[0]
        return tf.zeros(tf.stack([tf.shape(inputs)[0], width]), inputs.dtype)

    def uniform_like(self, like, seed_generator):
        self.draws.append((like.shape[-1], like.dtype, seed_generator))
        return tf.zeros_like(like)


def discover(step_fn, use_hooks, projected, initial_states, nondifferentiable) -> StepPlan:
    """Traces `step_fn` once under `use_hooks(DiscoveryHooks())` (see `run_steps`)."""
    hooks = DiscoveryHooks()

    def traced(projected_t, *states):
        with use_hooks(hooks):
            output, new_states = step_fn(projected_t, list(states))
        return [output, *new_states]

    specs = [tf.TensorSpec(projected.shape[1:], projected.dtype)] + [
        tf.TensorSpec(state.shape, state.dtype) for state in initial_states
    ]
    graph = tf.function(traced, autograph=False).get_concrete_function(*specs).graph
    for operation in graph.get_operations():
        if "Random" in operation.type or operation.type in _STATEFUL_OP_TYPES:
            return StepPlan(unsupported=f"the step runs {operation.type}")
    allowed = {id(kernel) for kernel, _ in hooks.products} | {id(t) for t in nondifferentiable}
    for external, _ in graph.captures:
        dtype = getattr(external, "dtype", None)
        if dtype is None or dtype == tf.resource or not dtype.is_floating:
            continue
        if id(external) not in allowed:
            return StepPlan(unsupported="the step captures a tensor that may need a gradient")
    for kernel, _ in hooks.products:
        if tf_variable(kernel) is None and not tf.is_tensor(kernel):
            return StepPlan(unsupported="a recurrent kernel is neither a variable nor a tensor")
    direct = [v for v in graph.variables if v.trainable and v.dtype.is_floating]
    return StepPlan(hooks.products, hooks.draws, direct)
