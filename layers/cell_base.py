"""Common base of the suite's recurrent cells: the two-part cell API and its regularizers.

Every cell of `layers/` subclasses `RecurrentCell`. A cell splits its work in two parts:

- `project_inputs(inputs, training=None, time_major=False)`: the input-side matrix product
  (x W, with the input dropout mask applied), for one step `[B, D]` or a whole sequence
  `[B, T, D]` (`[T, B, D]` with `time_major=True`) at once, returning `[..., P]`;
- `step(projected_t, states, training=None)`: the bias, the input-side normalisation, the
  recurrent product and the element-wise gate maths of one step, returning
  `(output, new_states)`. Element-wise work belongs here rather than in `project_inputs`:
  on one step's `[B, P]` slice it runs in cache, on the whole `[T, B, P]` sequence it is
  bound by memory bandwidth (and so is its gradient).
- Inside `step`, every product with a recurrent weight goes through
  `self._recurrent_matmul` and every random draw through the step hooks (`StepHooks`), so
  that `Recurrent` can replay them in its backward pass.

`call(inputs, states, training)` is `step(project_inputs(inputs), states)`, so a cell works
in `keras.layers.RNN`; the suite's `Recurrent` layer projects the whole sequence with one
matrix product before its loop and runs only `step` inside it.

Regularizers shared by all cells (each a constructor argument of every cell):

- Variational dropout (Gal & Ghahramani 2016, "A Theoretically Grounded Application of
  Dropout in Recurrent Neural Networks"): `dropout` on the inputs, `recurrent_dropout` on
  the hidden state entering the recurrent product, `output_dropout` on the cell output.
  Each is one mask per sequence, reused at every step.
- Zoneout (Krueger et al. 2017, "Zoneout: Regularizing RNNs by Randomly Preserving Hidden
  Activations"): `zoneout_hidden` and, for cells with a memory cell, `zoneout_cell`.
  In training each unit keeps its previous value with that probability (a fresh draw at
  every step); at inference the state is the expectation
  `rate * previous + (1 - rate) * new`.
- Recurrent weight DropConnect (Wan et al. 2013; the "weight drop" of Merity et al. 2018,
  AWD-LSTM): `recurrent_weight_dropout` drops entries of `recurrent_kernel`, one mask per
  sequence shared by the whole batch.

Dropout masks follow the pattern of `keras.layers` cells (`DropoutRNNCell`): they are made
once and cached on the cell until `reset_dropout_mask()` / `reset_recurrent_dropout_mask()`.
`keras.layers.RNN` and `Recurrent` create them before their loop and reset them after it;
if you drive a cell by hand step by step, call `reset_dropout_masks()` between sequences.
"""

from __future__ import annotations

import contextlib

import keras
from keras import activations, constraints, initializers, ops, regularizers
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell  # no public name

__all__ = ["HiddenStateCell", "RecurrentCell", "StepHooks", "layer_norm"]


class StepHooks:
    """How a cell's `step` does its recurrent matrix products and its random draws.

    `step` routes every product with a recurrent weight (`h_{t-1} R`, `(r * h) U_h`,
    `gates_{t-1} R_gates`, ...) through `matmul` and every per-step random draw (zoneout)
    through `uniform_like`. These defaults just compute them; the sequence layer swaps in
    hooks that record the products, so that its hand-written backward pass can replay them
    and compute the recurrent weight gradients as one matrix product after the loop, and
    that draw every step's noise before the loop. The rules a `step` keeps so that the
    sequence layer can do this are the contract in the docstring of `layers.loop`.
    """

    def matmul(self, inputs, kernel, columns=None):
        """`inputs @ kernel[:, columns[0]:columns[1]]` (the whole kernel if `columns` is None)."""
        if columns is not None:
            kernel = kernel[:, columns[0] : columns[1]]
        return ops.matmul(inputs, kernel)

    def uniform_like(self, like, seed_generator):
        """Uniform [0, 1) noise of the shape and dtype of `like` (a `[batch, width]` tensor)."""
        return keras.random.uniform(ops.shape(like), dtype=like.dtype, seed=seed_generator)


_PLAIN_HOOKS = StepHooks()


def input_matmul(inputs, kernel):
    """`inputs @ kernel` for `[..., D]` inputs as one 2-D product.

    A 3-D `[T, B, D] @ [D, P]` product would broadcast the kernel over T; its gradient
    with respect to the kernel is then T small products and a sum, several times slower
    than the single `[T*B, D]^T [T*B, P]` product used here.
    """
    if len(inputs.shape) == 2:
        return ops.matmul(inputs, kernel)
    leading = ops.shape(inputs)[:-1]
    flat = ops.reshape(inputs, (-1, inputs.shape[-1]))
    return ops.reshape(ops.matmul(flat, kernel), (*leading, kernel.shape[-1]))


def layer_norm(x, gain, shift=None, epsilon: float = 1e-3):
    """Layer normalisation over the last axis (Ba, Kiros & Hinton 2016).

    `LN(z) = (z - mean(z)) / sqrt(var(z) + epsilon) * gain + shift`, with the mean and the
    (biased) variance taken over the last axis. An all-zero `z` gives `shift` (no NaN).
    """
    mean = ops.mean(x, axis=-1, keepdims=True)
    centered = x - mean
    variance = ops.mean(ops.square(centered), axis=-1, keepdims=True)
    normalized = centered * ops.rsqrt(variance + epsilon) * gain
    if shift is not None:
        normalized = normalized + shift
    return normalized


def _check_rate(name: str, value) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a rate in [0, 1). Received: {name}={value}")
    return value


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base of every recurrent cell of the suite (not registered: it is abstract).

    Subclasses set `state_size` and `output_size`, create their weights in `build()`
    (standard weights first: `kernel`, `recurrent_kernel`, `bias`), and implement
    `project_inputs` and `step`. It is a Keras `DropoutRNNCell`, so that
    `keras.layers.RNN` makes its masks before its loop (one mask per sequence).

    Args:
        units: Positive integer, width of the hidden state.
        use_bias: Whether the cell has a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: Initializers of the
            input kernel, the recurrent kernel and the bias.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Weight regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: Weight constraints.
        dropout: Variational dropout rate on the inputs (one mask per sequence).
        recurrent_dropout: Variational dropout rate on the hidden state entering the
            recurrent product (one mask per sequence).
        output_dropout: Variational dropout rate on the cell output (one mask per
            sequence); the state carried to the next step is not dropped.
        zoneout_cell: Zoneout rate of the memory cell (cells with one only, LSTM).
        zoneout_hidden: Zoneout rate of the hidden state.
        recurrent_weight_dropout: DropConnect rate on `recurrent_kernel` (weight drop).
        seed: Seed of the cell's random draws (dropout masks, zoneout).
    """

    #: Whether the cell carries a memory cell that `zoneout_cell` can act on.
    has_cell_state = False

    def __init__(
        self,
        units: int,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        output_dropout: float = 0.0,
        zoneout_cell: float = 0.0,
        zoneout_hidden: float = 0.0,
        recurrent_weight_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive integer. Received: units={units!r}")
        super().__init__(**kwargs)
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.output_dropout = _check_rate("output_dropout", output_dropout)
        self.zoneout_cell = _check_rate("zoneout_cell", zoneout_cell)
        self.zoneout_hidden = _check_rate("zoneout_hidden", zoneout_hidden)
        self.recurrent_weight_dropout = _check_rate(
            "recurrent_weight_dropout", recurrent_weight_dropout
        )
        if self.zoneout_cell > 0 and not self.has_cell_state:
            raise ValueError(
                f"{type(self).__name__} has no memory cell, so `zoneout_cell` must be 0 "
                f"(received {self.zoneout_cell}); use `zoneout_hidden` instead."
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.output_size = units
        self._step_hooks = _PLAIN_HOOKS
        self._reset_all_masks()

    # ------------------------------------------------------------------ weights helpers
    def _add_kernel(self, input_dim: int, width: int):
        return self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def _add_recurrent_kernel(self, width: int, initializer=None):
        return self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=initializer or self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )

    def _add_bias(self, shape, initializer=None):
        if not self.use_bias:
            return None
        return self.add_weight(
            shape=shape,
            name="bias",
            initializer=initializer or self.bias_initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    def _add_layer_norm_weight(self, name: str, size: int, initializer="ones"):
        """A gain (`initializer="ones"`) or shift (`"zeros"`) vector of a layer norm."""
        return self.add_weight(shape=(size,), name=name, initializer=initializer)

    # ------------------------------------------------------------------ dropout masks
    def _reset_all_masks(self):
        self._dropout_mask = None
        self._recurrent_dropout_mask = None
        self._output_dropout_mask = None
        self._dropped_recurrent_kernel = None

    def reset_dropout_mask(self):
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self):
        """Resets the state-side masks: recurrent, output and weight-drop masks."""
        self._recurrent_dropout_mask = None
        self._output_dropout_mask = None
        self._dropped_recurrent_kernel = None

    def reset_dropout_masks(self):
        """Forgets every cached mask; the next sequence draws new ones."""
        self._reset_all_masks()

    def _make_mask(self, like, rate: float):
        return keras.random.dropout(ops.ones_like(like), rate=rate, seed=self.seed_generator)

    def get_dropout_mask(self, step_input):
        """The input dropout mask `[B, D]` of the current sequence (made on first use)."""
        if self._dropout_mask is None and self.dropout > 0:
            self._dropout_mask = self._make_mask(step_input, self.dropout)
        return self._dropout_mask

    def get_recurrent_dropout_mask(self, step_state):
        """The recurrent dropout mask `[B, units]` of the current sequence.

        Also makes the output dropout mask and the dropped recurrent kernel, so that a
        loop that calls this once before its first step (as `keras.layers.RNN` does) has
        every per-sequence mask ready outside the loop.
        """
        if self._recurrent_dropout_mask is None and self.recurrent_dropout > 0:
            self._recurrent_dropout_mask = self._make_mask(step_state, self.recurrent_dropout)
        self.get_output_dropout_mask(step_state)
        if self.built:
            self.get_dropped_recurrent_kernel()
        return self._recurrent_dropout_mask

    def get_output_dropout_mask(self, step_output):
        if self._output_dropout_mask is None and self.output_dropout > 0:
            self._output_dropout_mask = self._make_mask(step_output, self.output_dropout)
        return self._output_dropout_mask

    def get_dropped_recurrent_kernel(self):
        """`recurrent_kernel` with DropConnect applied (one mask per sequence)."""
        if self._dropped_recurrent_kernel is None and self.recurrent_weight_dropout > 0:
            kernel = ops.convert_to_tensor(self.recurrent_kernel)
            self._dropped_recurrent_kernel = kernel * self._make_mask(
                kernel, self.recurrent_weight_dropout
            )
        return self._dropped_recurrent_kernel

    def prepare_sequence(self, step_input, step_state, training=None):
        """Makes every per-sequence mask before a loop over steps (no-op at inference)."""
        if training:
            self.get_dropout_mask(step_input)
            self.get_recurrent_dropout_mask(step_state)

    # ------------------------------------------------------------------ regularizers
    def _drop_inputs(self, inputs, training, time_major: bool = False):
        if not (training and self.dropout > 0):
            return inputs
        if len(inputs.shape) == 2:
            return inputs * self.get_dropout_mask(inputs)
        first_step = inputs[0] if time_major else inputs[:, 0]
        mask = self.get_dropout_mask(first_step)
        return inputs * ops.expand_dims(mask, 0 if time_major else 1)

    def _drop_recurrent(self, state, training):
        if not (training and self.recurrent_dropout > 0):
            return state
        return state * self.get_recurrent_dropout_mask(state)

    def _recurrent_kernel_value(self, training):
        if training and self.recurrent_weight_dropout > 0:
            return self.get_dropped_recurrent_kernel()
        return self.recurrent_kernel

    def _drop_output(self, output, training):
        if not (training and self.output_dropout > 0):
            return output
        return output * self.get_output_dropout_mask(output)

    def _recurrent_matmul(self, inputs, kernel, columns=None):
        """A product with a recurrent weight inside `step` (goes through the step hooks)."""
        return self._step_hooks.matmul(inputs, kernel, columns)

    def _zoneout(self, previous, new, rate: float, training):
        """Zoneout: keep `previous` with probability `rate`; expectation at inference."""
        if rate <= 0:
            return new
        if training:
            noise = self._step_hooks.uniform_like(new, self.seed_generator)
            keep = ops.cast(ops.less(noise, rate), new.dtype)
            return keep * previous + (1.0 - keep) * new
        return rate * previous + (1.0 - rate) * new

    def _finish_step(self, h_previous, h_new, training):
        """Zoneout of the hidden state, then output dropout: returns `(state, output)`."""
        h_state = self._zoneout(h_previous, h_new, self.zoneout_hidden, training)
        return h_state, self._drop_output(h_state, training)

    # ------------------------------------------------------------------ step hooks
    @contextlib.contextmanager
    def using_step_hooks(self, hooks: StepHooks):
        """Runs `step` with `hooks` (see `StepHooks`) inside the `with` block."""
        previous, self._step_hooks = self._step_hooks, hooks
        try:
            yield self
        finally:
            self._step_hooks = previous

    # ------------------------------------------------------------------ cell API
    def project_inputs(self, inputs, training=None, time_major: bool = False):
        """Input-side matrix product for one step `[B, D]` or all steps `[B, T, D]` at once."""
        raise NotImplementedError

    def step(self, projected_t, states, training=None):
        """One step from projected inputs `[B, P]`: returns `(output, new_states)`."""
        raise NotImplementedError

    def call(self, inputs, states, training=None):
        return self.step(self.project_inputs(inputs, training=training), states, training=training)

    @property
    def projection_size(self) -> int:
        """Width P of `project_inputs`' output."""
        raise NotImplementedError

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in sizes]

    @staticmethod
    def _as_list(states):
        return list(states) if isinstance(states, (list, tuple)) else [states]

    def get_config(self):
        config = {
            "units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "output_dropout": self.output_dropout,
            "zoneout_cell": self.zoneout_cell,
            "zoneout_hidden": self.zoneout_hidden,
            "recurrent_weight_dropout": self.recurrent_weight_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


class HiddenStateCell(RecurrentCell):
    """Base of the cells whose only state is the hidden state h (GRU, MUT, SimpleRNN).

    `step` takes h out of the states, applies recurrent dropout and weight drop, asks
    `_new_hidden_state` for the cell's update and ends with zoneout and output dropout, so
    a subclass writes only its gate maths. Not registered: it is abstract.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(units, **kwargs)
        self.state_size = units

    def _new_hidden_state(self, projected_t, h_previous, h_recurrent, kernel):
        """The cell's update of h from the projected inputs `[B, P]`, h itself, h after
        recurrent dropout (what the recurrent products take) and the recurrent kernel
        after weight drop."""
        raise NotImplementedError

    def step(self, projected_t, states, training=None):
        nested = isinstance(states, (list, tuple))
        h_previous = states[0] if nested else states
        h_recurrent = self._drop_recurrent(h_previous, training)
        kernel = self._recurrent_kernel_value(training)
        h_new = self._new_hidden_state(projected_t, h_previous, h_recurrent, kernel)
        h_state, output = self._finish_step(h_previous, h_new, training)
        return output, ([h_state] if nested else h_state)


def serialize_activation(activation):
    """Serialises an activation; `None`/linear becomes `None`."""
    if activation is None or activation is activations.linear:
        return None
    return activations.serialize(activation)


def get_activation(identifier):
    """Resolves an activation; `None` means linear (identity)."""
    return activations.get(identifier) if identifier is not None else activations.linear
