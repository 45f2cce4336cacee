"""The TensorFlow-only parts of `layers/`: the time loop of `Recurrent` and its backward pass.

Everything else in `layers/` uses `keras.ops`; this module is the one place that calls
TensorFlow directly.

`run_steps` runs a cell's `step` over time-major projected inputs with `tf.while_loop`
(sequences whose length is only known at run time, eager mode, `tf.function`, SavedModels).
When a gradient may be taken, it runs the loop inside a `tf.custom_gradient` whose
backward pass is written the way cuDNN and oneDNN write theirs:

- the forward loop stores the states entering each step and the outputs of the step's
  recurrent products (`h_{t-1} R`, routed through the cell's `StepHooks`);
- the backward loop runs in reverse and takes, at each step, the vector-Jacobian product
  of that one step by automatic differentiation (`tf.GradientTape` on `step` alone, so
  every cell gets it: LSTM variants, GRU, layer norm, MUT, SimpleRNN); the recurrent
  products are replayed from the forward pass instead of recomputed, and only their
  input gradient `g R^T` is computed inside the loop;
- the recurrent weight gradients `dR = sum_t x_t^T g_t` are then single
  `[units, T*B] x [T*B, width]` matrix products after the loop, and the gradient of the
  projected inputs leaves as one `[T, B, P]` tensor, so that the input-side gradients
  (`dX = dP W^T`, `dW = X^T dP`) are single matrix products as well.

Zoneout noise is drawn for all steps before the loop (one draw per step, as before), so
that the backward pass sees exactly the forward pass's noise. Steps that this design
cannot replay exactly (random draws or state updates not made through the hooks, or
captured tensors other than the cell's dropout masks and dropped recurrent kernel that
may need a gradient) run in the plain loop, differentiated by TensorFlow itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from layers.cell_base import StepHooks

try:  # Whether a GradientTape is active (also while a tf.function is being traced).
    from tensorflow.python.eager.record import could_possibly_record as _could_record
except ImportError:  # pragma: no cover - private TF API moved: always prepare gradients

    def _could_record():
        return True


__all__ = ["run_steps"]

_STATEFUL_OP_TYPES = ("AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp")


def _as_list(states):
    return list(states) if isinstance(states, (list, tuple)) else [states]


def _tf_variable(value):
    """The `tf.Variable` behind a Keras variable (or the variable itself); else None."""
    if isinstance(value, tf.Variable):
        return value
    inner = getattr(value, "_value", None)  # keras.Variable on the TensorFlow backend
    return inner if isinstance(inner, tf.Variable) else None


# ---------------------------------------------------------------------------- step hooks
class _DiscoveryHooks(StepHooks):
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


class _LoopHooks(StepHooks):
    """Hooks inside the loops: products with pre-sliced kernels, noise drawn in advance."""

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

    def _next_product(self, kernel):
        index = self.product_index
        self.product_index += 1
        if index >= len(self.plan.products) or kernel is not self.plan.products[index][0]:
            raise RuntimeError(
                "The cell's `step` made its recurrent products in a different order or with "
                "other kernels than when it was first traced."
            )
        return index

    def matmul(self, inputs, kernel, columns=None):
        return tf.matmul(inputs, self.kernels[self._next_product(kernel)])

    def uniform_like(self, like, seed_generator):
        index = self.draw_index
        self.draw_index += 1
        return self.noise[index][self.time]


class _ForwardHooks(_LoopHooks):
    def start_step(self, time):
        super().start_step(time)
        self.products = []

    def matmul(self, inputs, kernel, columns=None):
        product = super().matmul(inputs, kernel, columns)
        self.products.append(product)
        return product


class _BackwardHooks(_LoopHooks):
    """Replays the stored products; their input gradient is `g kernel^T`."""

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
        index = self._next_product(kernel)
        stored, kernel_t = self.stored[index], self.kernels_transposed[index]

        @tf.custom_gradient
        def replay(inputs):
            def grad(upstream):
                return tf.matmul(upstream, kernel_t)

            return tf.identity(stored), grad

        product = replay(inputs)
        self.inputs.append(inputs)
        self.outputs.append(product)
        return product


# ---------------------------------------------------------------------------- step plan
class _StepPlan:
    """What one step does, found by tracing it once with `_DiscoveryHooks`."""

    def __init__(self, products, draws, direct_variables, supported, reason=""):
        self.products = products
        self.draws = draws
        self.direct_variables = direct_variables
        self.supported = supported
        self.reason = reason


def _discover(step_fn, use_hooks, projected, initial_states, nondifferentiable) -> _StepPlan:
    hooks = _DiscoveryHooks()

    def traced(projected_t, *states):
        with use_hooks(hooks):
            output, new_states = step_fn(projected_t, list(states))
        return [output, *_as_list(new_states)]

    specs = [tf.TensorSpec(projected.shape[1:], projected.dtype)] + [
        tf.TensorSpec(state.shape, state.dtype) for state in initial_states
    ]
    concrete = tf.function(traced, autograph=False).get_concrete_function(*specs)
    graph = concrete.graph
    for operation in graph.get_operations():
        if "Random" in operation.type or operation.type in _STATEFUL_OP_TYPES:
            return _StepPlan([], [], [], False, f"the step runs {operation.type}")
    kernel_ids = {id(kernel) for kernel, _ in hooks.products}
    allowed = kernel_ids | {id(t) for t in nondifferentiable}
    for external, _ in graph.captures:
        dtype = getattr(external, "dtype", None)
        if dtype is None or dtype == tf.resource or not dtype.is_floating:
            continue
        if id(external) not in allowed:
            return _StepPlan([], [], [], False, "the step captures a tensor that may need a gradient")
    for kernel, _ in hooks.products:
        if _tf_variable(kernel) is None and not tf.is_tensor(kernel):
            return _StepPlan([], [], [], False, "a recurrent kernel is neither a variable nor a tensor")
    direct = [v for v in graph.variables if v.trainable and v.dtype.is_floating]
    return _StepPlan(hooks.products, hooks.draws, direct, True)


# ---------------------------------------------------------------------------- loops
def _unstack(values, element_shape=None):
    return tf.TensorArray(
        values.dtype, size=tf.shape(values)[0], element_shape=element_shape or values.shape[1:]
    ).unstack(values)


def _forward_loop(step_fn, projected, initial_states, initial_output, mask, return_sequences,
                  hooks=None):
    """The forward loop: `(last_output, outputs or None, final_states, records)`.

    With `hooks` (`_ForwardHooks`), `records` holds, stacked over time, the states entering
    each step and the outputs of each recurrent product (what the backward pass replays).
    """
    num_steps = tf.shape(projected)[0]
    inputs_ta = _unstack(projected)
    mask_ta = None if mask is None else _unstack(mask)
    outputs_ta = tf.TensorArray(
        initial_output.dtype,
        size=num_steps if return_sequences else 0,
        element_shape=initial_output.shape,
    )
    record = hooks is not None
    states_tas = [
        tf.TensorArray(s.dtype, size=num_steps if record else 0, element_shape=s.shape)
        for s in initial_states
    ]
    num_products = len(hooks.plan.products) if record else 0
    products_tas = [
        tf.TensorArray(projected.dtype, size=num_steps) for _ in range(num_products)
    ]

    def body(time, last_output, states, outputs_ta, states_tas, products_tas):
        states = list(states)
        if record:
            hooks.start_step(time)
            states_tas = [ta.write(time, s) for ta, s in zip(states_tas, states)]
        output, new_states = step_fn(inputs_ta.read(time), states)
        if record:
            products_tas = [ta.write(time, p) for ta, p in zip(products_tas, hooks.products)]
        new_states = _as_list(new_states)
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
        return time + 1, last_output, new_states, outputs_ta, states_tas, products_tas

    _, last_output, final_states, outputs_ta, states_tas, products_tas = tf.while_loop(
        lambda time, *_: time < num_steps,
        body,
        (
            tf.constant(0, tf.int32),
            initial_output,
            list(initial_states),
            outputs_ta,
            states_tas,
            products_tas,
        ),
        maximum_iterations=num_steps,
    )
    outputs = None
    if return_sequences:
        outputs = outputs_ta.stack()
        outputs.set_shape(projected.shape[:1].concatenate(initial_output.shape))
    records = None
    if record:
        records = ([ta.stack() for ta in states_tas], [ta.stack() for ta in products_tas])
    return last_output, outputs, list(final_states), records


def _backward_loop(step_fn, hooks, projected, states_seq, products_seq, mask, d_outputs,
                   d_last_output, d_final_states, direct_variables):
    """The reverse loop: per step, the vector-Jacobian product of `step` by autodiff.

    Returns `(d_projected [T, B, P], d_initial_states, product_inputs [T, B, in] per
    product, product_grads [T, B, width] per product, d_direct_variables)`.
    """
    num_steps = tf.shape(projected)[0]
    projected_ta = _unstack(projected)
    states_tas = [_unstack(s) for s in states_seq]
    products_tas = [_unstack(p) for p in products_seq]
    mask_ta = None if mask is None else _unstack(mask)
    d_outputs_ta = None if d_outputs is None else _unstack(d_outputs)
    num_products = len(products_seq)
    d_projected_ta = tf.TensorArray(projected.dtype, size=num_steps, element_shape=projected.shape[1:])
    inputs_tas = [tf.TensorArray(projected.dtype, size=num_steps) for _ in range(num_products)]
    grads_tas = [tf.TensorArray(projected.dtype, size=num_steps) for _ in range(num_products)]
    d_direct0 = [tf.zeros_like(v) for v in direct_variables]

    def body(time, d_states, d_last, d_direct, d_projected_ta, inputs_tas, grads_tas):
        time = time - 1
        d_states, d_direct = list(d_states), list(d_direct)
        d_output = d_last
        if d_outputs_ta is not None:
            d_output = d_output + d_outputs_ta.read(time)
        if mask_ta is not None:
            valid = mask_ta.read(time)[:, None]
            # Masked steps pass the state (and the last output) through unchanged.
            d_output = tf.where(valid, d_output, tf.zeros_like(d_output))
            d_last = tf.where(valid, tf.zeros_like(d_last), d_last)
            d_new_states = [tf.where(valid, d, tf.zeros_like(d)) for d in d_states]
            d_passed = [tf.where(valid, tf.zeros_like(d), d) for d in d_states]
        else:
            d_last = tf.zeros_like(d_last)
            d_new_states, d_passed = d_states, None
        projected_t = projected_ta.read(time)
        previous = [ta.read(time) for ta in states_tas]
        for state, template in zip(previous, states_seq):
            state.set_shape(template.shape[1:])
        hooks.start_step(time, [ta.read(time) for ta in products_tas])
        with tf.GradientTape() as tape:
            tape.watch(projected_t)
            tape.watch(previous)
            output, new_states = step_fn(projected_t, previous)
            new_states = _as_list(new_states)
        sources = [projected_t, *previous, *hooks.outputs, *direct_variables]
        grads = tape.gradient(
            [output, *new_states],
            sources,
            output_gradients=[d_output, *d_new_states],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        d_projected_t = grads[0]
        d_previous = grads[1 : 1 + len(previous)]
        d_products = grads[1 + len(previous) : 1 + len(previous) + num_products]
        d_direct_t = grads[1 + len(previous) + num_products :]
        if d_passed is not None:
            d_previous = [a + b for a, b in zip(d_previous, d_passed)]
        inputs_tas = [ta.write(time, x) for ta, x in zip(inputs_tas, hooks.inputs)]
        grads_tas = [ta.write(time, g) for ta, g in zip(grads_tas, d_products)]
        d_direct = [a + tf.convert_to_tensor(b) for a, b in zip(d_direct, d_direct_t)]
        for new, old in zip(d_previous, d_states):
            new.set_shape(old.shape)
        return (
            time,
            list(d_previous),
            d_last,
            d_direct,
            d_projected_ta.write(time, d_projected_t),
            inputs_tas,
            grads_tas,
        )

    _, d_states0, _, d_direct, d_projected_ta, inputs_tas, grads_tas = tf.while_loop(
        lambda time, *_: time > 0,
        body,
        (num_steps, list(d_final_states), d_last_output, d_direct0, d_projected_ta, inputs_tas,
         grads_tas),
        maximum_iterations=num_steps,
    )
    d_projected = d_projected_ta.stack()
    d_projected.set_shape(projected.shape)
    return (
        d_projected,
        list(d_states0),
        [ta.stack() for ta in inputs_tas],
        [ta.stack() for ta in grads_tas],
        list(d_direct),
    )


def _draw_uniform(shape, dtype, seed_generator):
    import keras  # keras' random draws honour the cell's SeedGenerator

    return keras.random.uniform(shape, dtype=dtype, seed=seed_generator)


def _fast_gradient_loop(step_fn, use_hooks, plan, projected, initial_states, initial_output,
                        mask, return_sequences):
    """The forward loop inside a `tf.custom_gradient` with the hand-written backward pass."""
    num_states = len(initial_states)
    # Distinct recurrent kernels in order of first use. Tensors among them (e.g. a kernel
    # with weight drop applied) are inputs of the custom gradient, so that their gradient
    # flows on to the variables they were made from.
    kernels, seen = [], set()
    for kernel, _ in plan.products:
        if id(kernel) not in seen:
            seen.add(id(kernel))
            kernels.append(kernel)
    tensor_kernels = [k for k in kernels if _tf_variable(k) is None]

    def hooked(hooks):
        def step(projected_t, states):
            with use_hooks(hooks):
                return step_fn(projected_t, states)

        return step

    @tf.custom_gradient
    def loop(projected, *args):
        states0 = list(args[:num_states])
        kernel_values = {id(k): v for k, v in zip(tensor_kernels, args[num_states:])}
        for kernel in kernels:
            if id(kernel) not in kernel_values:
                kernel_values[id(kernel)] = tf.convert_to_tensor(kernel)
        kernel_slices = []
        for kernel, columns in plan.products:
            value = kernel_values[id(kernel)]
            kernel_slices.append(value if columns is None else value[:, columns[0] : columns[1]])
        num_steps, batch = tf.shape(projected)[0], tf.shape(projected)[1]
        noise = [
            tf.convert_to_tensor(_draw_uniform((num_steps, batch, width), dtype, generator))
            for width, dtype, generator in plan.draws
        ]
        forward_hooks = _ForwardHooks(plan, kernel_slices, noise)
        last_output, outputs, final_states, records = _forward_loop(
            hooked(forward_hooks), projected, states0, initial_output, mask, return_sequences,
            hooks=forward_hooks,
        )
        states_seq, products_seq = records

        def grad(d_last_output, *rest, variables=None):
            d_outputs = rest[0] if return_sequences else None
            d_final = list(rest[1:] if return_sequences else rest)
            d_final = [
                tf.zeros_like(s) if d is None else tf.convert_to_tensor(d)
                for d, s in zip(d_final, states0)
            ]
            if d_last_output is None:
                d_last_output = tf.zeros_like(initial_output)
            kernels_transposed = [tf.transpose(k) for k in kernel_slices]
            backward_hooks = _BackwardHooks(plan, kernel_slices, noise, kernels_transposed)
            direct = plan.direct_variables
            d_projected, d_states0, inputs_seq, grads_seq, d_direct = _backward_loop(
                hooked(backward_hooks), backward_hooks, projected, states_seq, products_seq,
                mask, d_outputs, d_last_output, d_final, direct,
            )
            # The recurrent weight gradients: one [in, T*B] x [T*B, width] product each.
            d_kernels = {}
            for (kernel, columns), inputs_all, grads_all in zip(plan.products, inputs_seq, grads_seq):
                flat_inputs = tf.reshape(inputs_all, (-1, tf.shape(inputs_all)[-1]))
                flat_grads = tf.reshape(grads_all, (-1, tf.shape(grads_all)[-1]))
                d_slice = tf.matmul(flat_inputs, flat_grads, transpose_a=True)
                if columns is not None:
                    full_width = kernel_values[id(kernel)].shape[-1]
                    d_slice = tf.pad(d_slice, [[0, 0], [columns[0], full_width - columns[1]]])
                previous = d_kernels.get(id(kernel))
                d_kernels[id(kernel)] = d_slice if previous is None else previous + d_slice
            d_variables = []
            for variable in variables or []:
                gradient = None
                for kernel in kernels:
                    if _tf_variable(kernel) is variable:
                        gradient = d_kernels[id(kernel)]
                for direct_variable, d_value in zip(direct, d_direct):
                    if direct_variable is variable:
                        gradient = d_value if gradient is None else gradient + d_value
                d_variables.append(gradient)
            d_inputs = [d_projected, *d_states0, *[d_kernels[id(k)] for k in tensor_kernels]]
            return d_inputs, d_variables

        results = [last_output] + ([outputs] if return_sequences else []) + final_states
        return results, grad

    results = loop(projected, *initial_states, *[tf.convert_to_tensor(k) for k in tensor_kernels])
    last_output = results[0]
    outputs = results[1] if return_sequences else None
    final_states = list(results[2:] if return_sequences else results[1:])
    return last_output, outputs, final_states


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
        use_hooks: `hooks -> context manager` under which `step_fn` routes its recurrent
            products and random draws through `hooks` (a cell's `using_step_hooks`). With
            it, and when a gradient may be taken, the loop gets the hand-written backward
            pass described in the module docstring; without it, TensorFlow differentiates
            the loop.
        nondifferentiable: Tensors the step reads that need no gradient (dropout masks).

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
    if use_hooks is not None and _could_record():
        plan = _discover(step_fn, use_hooks, projected, initial_states, nondifferentiable)
        if plan.supported:
            return _fast_gradient_loop(
                step_fn, use_hooks, plan, projected, initial_states, initial_output, mask,
                return_sequences,
            )
    last_output, outputs, final_states, _ = _forward_loop(
        step_fn, projected, initial_states, initial_output, mask, return_sequences
    )
    return last_output, outputs, final_states
