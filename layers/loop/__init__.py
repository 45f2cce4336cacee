"""The time loop of `Recurrent`: the one part of the cells' path that calls TensorFlow.

`run_steps` runs a cell's `step` over a sequence whose input projection was computed
before the loop, with `tf.while_loop` (lengths known only at run time, eager mode,
`tf.function`, SavedModels). When a gradient may be taken it runs the loop inside a
`tf.custom_gradient` whose backward pass is written the way cuDNN and oneDNN write theirs;
when none is (prediction, serving, export traces) it records nothing, and `jit_compile`
compiles it with XLA. Under mixed precision the recurrent products run in the compute
dtype (bfloat16) while the states and the element-wise maths stay in float32.

One file per idea:

    framework.py   what the loop asks TensorFlow and Keras (gradient recorded? GPU? replicas?)
    discovery.py   tracing a step once to find its recurrent products and random draws
    hooks.py       the step hooks inside the loops: pre-sliced kernels, replayed products
    forward.py     the forward loop (and what it records for the backward pass)
    backward.py    the reverse loop of per-step vector-Jacobian products, weight gradients
    planned.py     the inference loop and the custom-gradient loop of a discovered step
    run.py         `run_steps`: which of these runs

The contract for cells
----------------------
A cell's step gets the fast loops when `Recurrent` can hand `run_steps` a `use_hooks`
(the cell's `using_step_hooks(hooks)` context manager, from `RecurrentCell` in
`layers/cell_base.py`) and the step keeps to these rules:

1. Every matrix product with a recurrent weight (`h_{t-1} R`, `(r * h) U_h`,
   `c_{t-1} P` ...) goes through `hooks.matmul(inputs, kernel, columns=None)`
   (`RecurrentCell._recurrent_matmul`), with `kernel` the same variable, or the same
   tensor made once per sequence (a weight-dropped kernel), at every step, and the
   products in the same order at every step.
2. Every per-step random draw (zoneout) goes through `hooks.uniform_like(like,
   seed_generator)`; the step draws no other random numbers and assigns no variables.
3. Every other floating-point tensor the step reads from outside (dropout masks, made once
   per sequence) is passed to `run_steps` as `nondifferentiable`; variables the step reads
   itself (biases, layer-norm gains, peepholes) are fine: their gradient comes from the
   per-step vector-Jacobian product.

How the products are found: `discover` traces the step once into a graph with hooks that
record each product's kernel and column range and each draw's width and seed generator,
returning zeros in their place; the graph's operations and captured tensors then show
whether rules 2 and 3 hold (`StepPlan.unsupported` says which did not). Inside the loops
the hooks check that the products come in the traced order (else a `RuntimeError`).
A step that breaks a rule, and a cell without `using_step_hooks` (Keras' own cells), still
runs: in the plain `tf.while_loop`, differentiated by TensorFlow. So does every step under
a multi-replica `tf.distribute` strategy.

The measured effect of each choice, and of the levers that were measured and removed, is
in the "Speed" section of `layers/README.md` (`python -m benchmarks.rnn_speed`).
"""

from layers.loop.framework import gpu_available, gradient_may_be_recorded
from layers.loop.run import run_steps

__all__ = ["gpu_available", "gradient_may_be_recorded", "run_steps"]
