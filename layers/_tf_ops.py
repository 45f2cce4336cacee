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

What the loop needs to know about a step (its recurrent products and random draws) is
found by tracing the step once with recording hooks (`_discover`). When no gradient is
being recorded (prediction, serving, export traces), the loop records nothing and runs
with the kernels sliced (and cast) once before it; `jit_compile` compiles that loop with
XLA. Under mixed precision the recurrent products run in the compute dtype (bfloat16 on
AMX) while the states and the element-wise maths stay in float32. A lever that is off by
default (`loop_options(fuse_elementwise=True)`, `_FusedStep`) runs the element-wise parts
of each step and of its vector-Jacobian product as XLA clusters between the recurrent
products.

Measured effects of each of these choices: `benchmarks/rnn_speed.py` and the "Speed"
section of `layers/README.md`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import tensorflow as tf

from layers.cell_base import StepHooks

try:  # Whether a GradientTape is active (also while a tf.function is being traced).
    from tensorflow.python.eager.record import could_possibly_record as _could_record
except ImportError:  # pragma: no cover - private TF API moved: always prepare gradients

    def _could_record():
        return True


__all__ = ["gpu_available", "gradient_may_be_recorded", "loop_options", "run_steps"]


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU."""
    return bool(tf.config.list_logical_devices("GPU"))


def gradient_may_be_recorded() -> bool:
    """Whether a gradient tape is active (also while a `tf.function` is being traced in one)."""
    return _could_record()


class _LoopOptions:
    """Switches of the loop's optimisations (the levers measured by `benchmarks/rnn_speed.py`).

    fast_gradient: use the hand-written backward pass (else TensorFlow differentiates the
        `tf.while_loop`).
    jit_compile: None (the layer's `jit_compile`), or force it: False, or True (XLA for
        the loop when no gradient is being recorded).
    stacked_records: the forward pass stacks its records into `[T, B, .]` tensors (like
        preallocated buffers) instead of handing `TensorArray`s to the backward pass.
    unroll_max_steps: unroll (a Python loop, no `tf.while_loop`) inference loops whose
        static length is at most this.
    fuse_elementwise: run the element-wise parts of each step (everything but the
        recurrent products) and of each step's vector-Jacobian product as XLA clusters,
        leaving the recurrent products to TensorFlow's oneDNN kernels (`_FusedStep`).
        Off: it did not pay on this machine (`benchmarks/fused_step_probe.py`).
    """

    def __init__(self):
        self.fast_gradient = True
        self.jit_compile = None
        self.stacked_records = False
        self.unroll_max_steps = 0
        self.fuse_elementwise = False


_OPTIONS = _LoopOptions()


@contextlib.contextmanager
def loop_options(**changes):
    """Temporarily changes the loop's switches, e.g. `loop_options(fast_gradient=False)`."""
    previous = {name: getattr(_OPTIONS, name) for name in changes}
    for name, value in changes.items():
        if not hasattr(_OPTIONS, name):
            raise ValueError(f"Unknown loop option {name!r}.")
        setattr(_OPTIONS, name, value)
    try:
        yield _OPTIONS
    finally:
        for name, value in previous.items():
            setattr(_OPTIONS, name, value)


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
def _matmul(inputs, kernel):
    """`inputs @ kernel` in the kernel's dtype (bfloat16 under mixed precision), returned in
    the dtype of `inputs` (the loop's float32)."""
    if inputs.dtype == kernel.dtype:
        return tf.matmul(inputs, kernel)
    return tf.cast(tf.matmul(tf.cast(inputs, kernel.dtype), kernel), inputs.dtype)


class _DiscoveryHooks(StepHooks):
    """Records which recurrent products and random draws a step makes, touching neither."""

    def __init__(self):
        self.products = []  # (kernel object, columns)
        self.draws = []  # (width, dtype, seed generator)
        self.inputs = []  # per product, the tensor it multiplies

    def matmul(self, inputs, kernel, columns=None):
        self.products.append((kernel, columns))
        self.inputs.append(inputs)
        width = kernel.shape[-1] if columns is None else columns[1] - columns[0]
        return tf.zeros(tf.stack([tf.shape(inputs)[0], width]), inputs.dtype)

    def uniform_like(self, like, seed_generator):
        self.draws.append((like.shape[-1], like.dtype, seed_generator))
        return tf.zeros_like(like)


class _PlannedHooks(StepHooks):
    """Hooks that replay a traced `_StepPlan`: they count the step's products and random
    draws and check that the products come in the traced order."""

    def __init__(self, plan):
        self.plan = plan
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


class _LoopHooks(_PlannedHooks):
    """Hooks inside the loops: products with pre-sliced kernels, noise drawn in advance."""

    def __init__(self, plan, kernels, noise):
        super().__init__(plan)
        self.kernels = kernels  # per product: the [in, width] kernel slice
        self.noise = noise  # per draw: the [T, B, width] noise
        self.time = None

    def start_step(self, time):
        self.time = time
        self.product_index = 0
        self.draw_index = 0

    def matmul(self, inputs, kernel, columns=None):
        return _matmul(inputs, self.kernels[self._next_product(kernel)])

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
                return _matmul(upstream, kernel_t)

            return tf.identity(stored), grad

        product = replay(inputs)
        self.inputs.append(inputs)
        self.outputs.append(product)
        return product


# ---------------------------------------------------------------------------- step plan
class _StepPlan:
    """What one step does, found by tracing it once with `_DiscoveryHooks`."""

    def __init__(self, products, draws, direct_variables, supported, reason="", input_aliases=()):
        self.products = products
        self.draws = draws
        self.direct_variables = direct_variables
        self.supported = supported
        self.reason = reason
        # Per product, the index of the state that it multiplies as it is (e.g. `h_{t-1} R`),
        # or None when its input is computed inside the step (`(r * h) U`, dropout).
        self.input_aliases = list(input_aliases) or [None] * len(products)


def _discover(step_fn, use_hooks, projected, initial_states, nondifferentiable) -> _StepPlan:
    hooks = _DiscoveryHooks()
    input_aliases = []

    def traced(projected_t, *states):
        with use_hooks(hooks):
            output, new_states = step_fn(projected_t, list(states))
        for inputs in hooks.inputs:
            input_aliases.append(next((k for k, s in enumerate(states) if s is inputs), None))
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
            return _StepPlan(
                [], [], [], False, "the step captures a tensor that may need a gradient"
            )
    for kernel, _ in hooks.products:
        if _tf_variable(kernel) is None and not tf.is_tensor(kernel):
            return _StepPlan(
                [], [], [], False, "a recurrent kernel is neither a variable nor a tensor"
            )
    direct = [v for v in graph.variables if v.trainable and v.dtype.is_floating]
    return _StepPlan(hooks.products, hooks.draws, direct, True, input_aliases=input_aliases)


# ---------------------------------------------------------------------------- loops
# Per-step inputs are read as `values[time]` (a slice along the first axis, which shares the
# buffer) and per-step records are `TensorArray` writes (which keep a reference): the only
# copies of whole sequences are the stacks that the batched products need.


def _forward_loop(
    step_fn,
    projected,
    initial_states,
    initial_output,
    mask,
    return_sequences,
    hooks=None,
    record=True,
    differentiable=False,
):
    """The forward loop: `(last_output, outputs or None, final_states, records)`.

    With `hooks` (`_ForwardHooks`), `records` is `(states_tas, products_tas)`: per time step,
    the states entering the step and the outputs of each recurrent product (what the
    backward pass replays), as `TensorArray`s.

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
        new_states = _as_list(new_states)
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
    static_steps = projected.shape[0]
    if (
        not record
        and not differentiable
        and static_steps is not None
        and static_steps <= _OPTIONS.unroll_max_steps
    ):  # lever: unrolled
        for _ in range(static_steps):
            carry = body(*carry)
        _, last_output, final_states, outputs_ta, _, _ = carry
        outputs = outputs_ta.stack() if return_sequences else None
        return last_output, outputs, list(final_states), None

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
    records = None
    if record:
        records = (states_tas, products_tas)
        if _OPTIONS.stacked_records:  # lever: contiguous [T, B, .] buffers instead
            records = tuple([_Stacked(ta.stack()) for ta in tas] for tas in records)
    return last_output, outputs, list(final_states), records


class _Stacked:
    """A stacked `[T, ...]` record read like a `TensorArray` (the `stacked_records` lever)."""

    def __init__(self, values):
        self.values = values

    def read(self, time):
        return self.values[time]

    def stack(self):
        return self.values


def _tape_step_vjp(step_fn, hooks, direct_variables):
    """The vector-Jacobian product of one step by `tf.GradientTape` on `step` alone, its
    recurrent products replayed by `hooks` (`_BackwardHooks`); see `_backward_loop`."""

    def step_vjp(time, projected_t, previous, stored, d_output, d_new_states):
        num_states, num_products = len(previous), len(stored)
        hooks.start_step(time, stored)
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
        return (
            grads[0],
            grads[1 : 1 + num_states],
            list(hooks.inputs),
            grads[1 + num_states : 1 + num_states + num_products],
            grads[1 + num_states + num_products :],
        )

    return step_vjp


def _backward_loop(
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
    """The reverse loop: per step, the vector-Jacobian product of `step`.

    `step_vjp(time, projected_t, previous_states, stored_products, d_output, d_new_states)`
    returns `(d_projected_t, d_previous_states, product_inputs, d_products, d_direct)` for
    one step (`_tape_step_vjp`, or `_FusedStep.step_vjp`).

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


def _draw_uniform(shape, dtype, seed_generator):
    import keras  # keras' random draws honour the cell's SeedGenerator

    return keras.random.uniform(shape, dtype=dtype, seed=seed_generator)


def _distinct_kernels(plan):
    """The recurrent kernels of the plan's products, each once, in order of first use."""
    kernels, seen = [], set()
    for kernel, _ in plan.products:
        if id(kernel) not in seen:
            seen.add(id(kernel))
            kernels.append(kernel)
    return kernels


def _loop_constants(plan, kernel_values, projected, matmul_dtype):
    """Per product the kernel slice (cast to `matmul_dtype`), per draw all steps' noise."""
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
        tf.convert_to_tensor(_draw_uniform((num_steps, batch, width), dtype, generator))
        for width, dtype, generator in plan.draws
    ]
    return kernel_slices, noise


def _hooked(step_fn, use_hooks, hooks):
    def step(projected_t, states):
        with use_hooks(hooks):
            return step_fn(projected_t, states)

    return step


# ---------------------------------------------------------------------------- fused step
class _ProductReached(Exception):  # noqa: N818 - a signal, not an error
    """Ends a phase of a fused step at its recurrent product, carrying the product's input."""

    def __init__(self, inputs):
        super().__init__()
        self.inputs = inputs


class _PhaseHooks(_PlannedHooks):
    """Hooks of one phase of `_FusedStep`: the earlier products are given, the phase stops
    at product `stop` (None: runs to the end of the step), the noise is this step's."""

    def __init__(self, plan, products, noise_t, stop):
        super().__init__(plan)
        self.products = products
        self.noise_t = noise_t
        self.stop = stop

    def matmul(self, inputs, kernel, columns=None):
        index = self._next_product(kernel)
        if index == self.stop:
            raise _ProductReached(inputs)
        return self.products[index]

    def uniform_like(self, like, seed_generator):
        index = self.draw_index
        self.draw_index += 1
        return self.noise_t[index]


class _FusedStep:
    """A step split at its recurrent products, its element-wise parts compiled with XLA.

    Phase k (k < number of products) computes the input of recurrent product k from the
    projected inputs, the states and the products before it; the last phase computes the
    step's output and new states. Each phase, and the vector-Jacobian product of each, is
    one `tf.function(jit_compile=True)` (one XLA cluster), while the recurrent products
    `x R` and their input gradients `g R^T` stay TensorFlow (oneDNN) products between
    them. A phase whose result is a state as it is (`h_{t-1} R`) is skipped.

    The lever `loop_options(fuse_elementwise=True)`; every op of the step must be one that
    XLA compiles (true of every cell of `layers/`).
    """

    def __init__(self, step_fn, use_hooks, plan):
        self.step_fn = step_fn
        self.use_hooks = use_hooks
        self.plan = plan
        self.num_products = len(plan.products)
        # Whether gradients of products that equal the gradient of the projected inputs
        # may be returned as that one tensor (only when no earlier phase adds to them).
        self.dedupe_grads = all(alias is not None for alias in plan.input_aliases)
        self.grad_aliases = [False] * self.num_products  # found while tracing `last_vjp`

        def compiled(function):
            return tf.function(function, jit_compile=True, autograph=False)

        self.phases = [
            compiled(lambda p, s, products, noise, k=k: self._phase(k, p, s, products, noise))
            for k in range(self.num_products)
        ]
        self.last_phase = compiled(
            lambda p, s, products, noise: self._phase(None, p, s, products, noise)
        )
        self.phase_vjps = [
            compiled(
                lambda p, s, products, noise, d, k=k: self._phase_vjp(k, p, s, products, noise, d)
            )
            for k in range(self.num_products)
        ]
        self.last_vjp = compiled(self._last_vjp)

    def _phase(self, stop, projected_t, states, products, noise_t):
        hooks = _PhaseHooks(self.plan, list(products), list(noise_t), stop)
        try:
            with self.use_hooks(hooks):
                output, new_states = self.step_fn(projected_t, list(states))
        except _ProductReached as reached:
            return reached.inputs
        if stop is not None:
            raise RuntimeError("The cell's `step` made fewer recurrent products than traced.")
        return [output, *_as_list(new_states)]

    def _phase_vjp(self, stop, projected_t, states, products, noise_t, d_inputs):
        """`[inputs, *grads]`: what phase `stop` (None: the last phase, the step's results)
        computes, and its vector-Jacobian product with `d_inputs` with respect to the
        step's input slice, states, earlier products and direct variables."""
        with tf.GradientTape() as tape:
            tape.watch([projected_t, *states, *products])
            inputs = self._phase(stop, projected_t, states, products, noise_t)
        grads = tape.gradient(
            inputs,
            [projected_t, *states, *products, *self.plan.direct_variables],
            output_gradients=d_inputs,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return [inputs, *grads]

    def _last_vjp(self, projected_t, states, products, noise_t, d_output, d_new_states):
        _, *grads = self._phase_vjp(
            None, projected_t, states, products, noise_t, [d_output, *d_new_states]
        )
        first_product = 1 + len(states)
        d_products = grads[first_product : first_product + self.num_products]
        self.grad_aliases = [self.dedupe_grads and d is grads[0] for d in d_products]
        kept = [d for d, alias in zip(d_products, self.grad_aliases) if not alias]
        return [*grads[:first_product], *kept, *grads[first_product + self.num_products :]]

    def forward_step(self, hooks):
        """A step function for `_forward_loop`: the products through `hooks` (`_LoopHooks`)."""
        plan = self.plan

        def step(projected_t, states):
            noise_t = [noise[hooks.time] for noise in hooks.noise]
            products = []
            for index, (kernel, _) in enumerate(plan.products):
                alias = plan.input_aliases[index]
                if alias is None:
                    inputs = self.phases[index](projected_t, states, products, noise_t)
                else:
                    inputs = states[alias]
                products.append(hooks.matmul(inputs, kernel))
            results = self.last_phase(projected_t, states, products, noise_t)
            return results[0], results[1:]

        return step

    def step_vjp(self, noise, kernels_transposed):
        """A `step_vjp` for `_backward_loop` (its products replayed from the forward pass)."""
        plan, num_products = self.plan, self.num_products

        def step_vjp(time, projected_t, previous, stored, d_output, d_new_states):
            num_states = len(previous)
            noise_t = [values[time] for values in noise]
            grads = self.last_vjp(projected_t, previous, stored, noise_t, d_output, d_new_states)
            d_projected_t = grads[0]
            d_previous = list(grads[1 : 1 + num_states])
            rest = list(grads[1 + num_states :])
            d_products = []
            for alias in self.grad_aliases:
                d_products.append(d_projected_t if alias else rest.pop(0))
            d_direct = rest
            product_inputs = [None] * num_products
            for index in reversed(range(num_products)):
                d_inputs = _matmul(d_products[index], kernels_transposed[index])
                alias = plan.input_aliases[index]
                if alias is not None:
                    product_inputs[index] = previous[alias]
                    d_previous[alias] = d_previous[alias] + d_inputs
                    continue
                inputs, d_p, *rest = self.phase_vjps[index](
                    projected_t, previous, stored[:index], noise_t, d_inputs
                )
                product_inputs[index] = inputs
                d_projected_t = d_projected_t + d_p
                d_previous = [a + b for a, b in zip(d_previous, rest[:num_states])]
                rest = rest[num_states:]
                for earlier in range(index):
                    d_products[earlier] = d_products[earlier] + rest[earlier]
                d_direct = [a + b for a, b in zip(d_direct, rest[index:])]
            return d_projected_t, d_previous, product_inputs, d_products, d_direct

        return step_vjp


class _PlannedLoop:
    """The loops of a step whose recurrent products and random draws `plan` lists: one
    for inference and one with the hand-written backward pass, sharing their arguments
    and their forward pass over pre-sliced (and pre-cast) kernels and pre-drawn noise."""

    def __init__(
        self,
        step_fn,
        use_hooks,
        plan,
        initial_output,
        mask,
        return_sequences,
        matmul_dtype,
    ):
        self.step_fn = step_fn
        self.use_hooks = use_hooks
        self.plan = plan
        self.initial_output = initial_output
        self.mask = mask
        self.return_sequences = return_sequences
        self.matmul_dtype = matmul_dtype
        self.fused = _FusedStep(step_fn, use_hooks, plan) if _OPTIONS.fuse_elementwise else None

    def _forward(self, hooks_class, kernel_values, projected, initial_states, record):
        """The forward loop with `hooks_class` hooks: `(kernel_slices, noise, results)`,
        `results` being those of `_forward_loop`."""
        kernel_slices, noise = _loop_constants(
            self.plan, kernel_values, projected, self.matmul_dtype
        )
        hooks = hooks_class(self.plan, kernel_slices, noise)
        if self.fused is not None:
            step = self.fused.forward_step(hooks)
        else:
            step = _hooked(self.step_fn, self.use_hooks, hooks)
        results = _forward_loop(
            step,
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
        kernel_values = {id(k): tf.convert_to_tensor(k) for k in _distinct_kernels(self.plan)}
        _, _, (last_output, outputs, final_states, _) = self._forward(
            _LoopHooks, kernel_values, projected, initial_states, record=False
        )
        return last_output, outputs, final_states

    def fast_gradient(self, projected, initial_states):
        """The forward loop inside a `tf.custom_gradient` with the hand-written backward pass."""
        plan, mask, matmul_dtype = self.plan, self.mask, self.matmul_dtype
        return_sequences, initial_output = self.return_sequences, self.initial_output
        num_states = len(initial_states)
        # Tensors among the kernels (e.g. a kernel with weight drop applied) are inputs of the
        # custom gradient, so that their gradient flows on to the variables they were made from.
        kernels = _distinct_kernels(plan)
        tensor_kernels = [k for k in kernels if _tf_variable(k) is None]

        @tf.custom_gradient
        def loop(projected, *args):
            states0 = list(args[:num_states])
            kernel_values = {id(k): v for k, v in zip(tensor_kernels, args[num_states:])}
            for kernel in kernels:
                if id(kernel) not in kernel_values:
                    kernel_values[id(kernel)] = tf.convert_to_tensor(kernel)
            kernel_slices, noise, (last_output, outputs, final_states, records) = self._forward(
                _ForwardHooks, kernel_values, projected, states0, record=True
            )

            def grad(d_last_output, *rest, variables=None):
                def dense(d, like):
                    # None for an unused output; IndexedSlices for a gathered one.
                    return tf.zeros_like(like) if d is None else tf.convert_to_tensor(d)

                d_outputs = rest[0] if return_sequences else None
                if d_outputs is not None:
                    d_outputs = tf.convert_to_tensor(d_outputs)
                d_final = list(rest[1:] if return_sequences else rest)
                d_final = [dense(d, s) for d, s in zip(d_final, states0)]
                d_last_output = dense(d_last_output, initial_output)
                kernels_transposed = [tf.transpose(k) for k in kernel_slices]
                direct = plan.direct_variables
                if self.fused is not None:
                    step_vjp = self.fused.step_vjp(noise, kernels_transposed)
                else:
                    hooks = _BackwardHooks(plan, kernel_slices, noise, kernels_transposed)
                    step_vjp = _tape_step_vjp(
                        _hooked(self.step_fn, self.use_hooks, hooks), hooks, direct
                    )
                d_projected, d_states0, inputs_seq, grads_seq, d_direct = _backward_loop(
                    step_vjp,
                    projected,
                    states0,
                    records,
                    mask,
                    d_outputs,
                    d_last_output,
                    d_final,
                    direct,
                )
                # The recurrent weight gradients: one [in, T*B] x [T*B, width] product each.
                d_kernels = {}
                for (kernel, columns), inputs_all, grads_all in zip(
                    plan.products, inputs_seq, grads_seq
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
                d_variables = []
                for variable in variables or []:
                    gradient = None
                    for kernel in kernels:
                        if _tf_variable(kernel) is variable:
                            gradient = d_kernels[id(kernel)]
                    for direct_variable, d_value in zip(direct, d_direct):
                        if direct_variable is variable:
                            gradient = d_value if gradient is None else gradient + d_value
                    if gradient is not None and gradient.dtype != variable.dtype:
                        gradient = tf.cast(gradient, variable.dtype)  # mixed precision
                    d_variables.append(gradient)
                d_tensor_kernels = [
                    tf.cast(d_kernels[id(k)], kernel_values[id(k)].dtype) for k in tensor_kernels
                ]
                d_inputs = [d_projected, *d_states0, *d_tensor_kernels]
                return d_inputs, d_variables

            results = [last_output] + ([outputs] if return_sequences else []) + final_states
            return results, grad

        results = loop(
            projected, *initial_states, *[tf.convert_to_tensor(k) for k in tensor_kernels]
        )
        last_output = results[0]
        outputs = results[1] if return_sequences else None
        final_states = list(results[2:] if return_sequences else results[1:])
        return last_output, outputs, final_states


def _replicated() -> bool:
    """Whether a multi-replica tf.distribute strategy is active. Its mirrored variables are
    read through per-replica components that the hand-written backward pass does not map
    back to the variables, so those runs let TensorFlow differentiate the loop instead."""
    return tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1


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
        matmul_dtype: Dtype of the recurrent products (e.g. "bfloat16" for mixed precision:
            the products run in it, the states and the element-wise maths in the dtype of
            `projected`); None for the dtype of the kernels.
        jit_compile: Compile the loop with XLA when no gradient is being recorded.

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
    recording = _could_record()

    def run(projected, mask, initial_states):
        plan = None
        if use_hooks is not None:
            plan = _discover(step_fn, use_hooks, projected, initial_states, nondifferentiable)
        if plan is not None and plan.supported:
            planned = _PlannedLoop(
                step_fn, use_hooks, plan, initial_output, mask, return_sequences, matmul_dtype
            )
            if not recording:
                return planned.inference(projected, initial_states)
            if _OPTIONS.fast_gradient and not _replicated():
                return planned.fast_gradient(projected, initial_states)
        last_output, outputs, final_states, _ = _forward_loop(
            step_fn,
            projected,
            initial_states,
            initial_output,
            mask,
            return_sequences,
            differentiable=recording,
        )
        return last_output, outputs, final_states

    jit = jit_compile if _OPTIONS.jit_compile is None else _OPTIONS.jit_compile
    if jit and not recording:  # XLA for the forward loop only (see `Recurrent`)
        run = tf.function(run, jit_compile=True, autograph=False)
    return run(projected, mask, initial_states)
