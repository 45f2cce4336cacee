"""`Recurrent`: the suite's sequence layer, running any cell of `layers/` over time."""

from __future__ import annotations

import contextlib

import keras
from keras import ops
from keras.src import backend as keras_backend  # cuDNN kernels, AutocastScope: no public API

from layers import loop

__all__ = ["Recurrent"]

# Per-sequence randomness a cell caches between `prepare_sequence` and the mask reset:
# the dropout masks (Keras' `DropoutRNNCell` names) and the weight-dropped kernel.
_SEQUENCE_ATTRIBUTES = (
    "_dropout_mask",
    "_recurrent_dropout_mask",
    "_output_dropout_mask",
    "_dropped_recurrent_kernel",
)


def _cell_chain(cell):
    """The cell and the cells it wraps (`InputProjectionCell(cell)`, ...)."""
    while cell is not None:
        yield cell
        cell = getattr(cell, "cell", None)


def _sequence_randomness(cell) -> list:
    """`(cell, attribute, value)` of every cached per-sequence mask of the cell chain."""
    return [
        (link, name, getattr(link, name))
        for link in _cell_chain(cell)
        for name in _SEQUENCE_ATTRIBUTES
        if getattr(link, name, None) is not None
    ]


@contextlib.contextmanager
def _installed(randomness):
    """Puts the masks of a sequence back on the cells for the `with` block.

    The backward pass of `Recurrent` runs `step` again after the layer call has reset the
    cell's masks; it must see the same masks as the forward pass.
    """
    previous = [(link, name, getattr(link, name)) for link, name, _ in randomness]
    for link, name, value in randomness:
        setattr(link, name, value)
    try:
        yield
    finally:
        for link, name, value in previous:
            setattr(link, name, value)


def cudnn_kind(cell) -> str | None:
    """ "lstm" or "gru" if `cell` is exactly a configuration that Keras runs with cuDNN.

    That is `LSTMCell(units)` (any `forget_bias`, initializers, regularizers, constraints
    and input `dropout`) or `GRUCell(units)` (`reset_after=True`), with no peephole, no
    Greff switch, no layer norm, no recurrent, output or weight dropout and no zoneout.
    """
    from layers.gru import GRUCell
    from layers.lstm import LSTMCell

    if type(cell) not in (LSTMCell, GRUCell):
        return None
    state_regularized = (
        cell.recurrent_dropout
        or cell.output_dropout
        or cell.recurrent_weight_dropout
        or cell.zoneout_hidden
        or cell.zoneout_cell
    )
    if state_regularized or not cell.use_bias or cell.layer_norm:
        return None
    tanh, sigmoid = keras.activations.tanh, keras.activations.sigmoid
    if type(cell) is LSTMCell:
        standard = (
            cell.blocks == ("i", "f", "c", "o")
            and not cell.peepholes
            and not cell.full_gate_recurrence
            and cell.input_activation is tanh
            and cell.output_activation is tanh
            and cell.recurrent_activation is sigmoid
        )
        return "lstm" if standard else None
    if type(cell) is GRUCell:
        standard = (
            cell.reset_after and cell.activation is tanh and cell.recurrent_activation is sigmoid
        )
        return "gru" if standard else None
    return None


def cudnn_handoff(cell, use_cudnn, has_mask: bool, gpu_available: bool, recording: bool):
    """Whether `Recurrent` hands a call to Keras' cuDNN kernel: "lstm", "gru" or None.

    Args:
        cell: The layer's cell.
        use_cudnn: The layer's `use_cudnn` ("auto", True or False).
        has_mask: Whether the call has a mask.
        gpu_available: Whether TensorFlow sees a GPU.
        recording: Whether a gradient is being recorded (a training call). With "auto",
            calls that record none (prediction, export traces) keep the portable loop.
    """
    if use_cudnn is False or not gpu_available:
        return None
    kind = cudnn_kind(cell)
    if kind is None:
        return None
    if use_cudnn == "auto" and (has_mask or not recording):
        return None
    return kind


def _variables_uncast():
    """Inside a mixed-precision layer call: read variables in their own dtype (float32)."""
    return keras_backend.AutocastScope(None)


def _step_hooks_owner(cell):
    """The cell whose `using_step_hooks` routes the products of `cell.step`, if any."""
    for link in _cell_chain(cell):
        if hasattr(link, "using_step_hooks"):
            return link
    return None


@keras.saving.register_keras_serializable(package="rnn_suite")
class Recurrent(keras.layers.Layer):
    """Runs a recurrent cell over a sequence, with masks, initial and stateful states.

    The input projection of every time step is computed before the loop as one matrix
    product (`cell.project_inputs` on the whole `[T, B, D]` sequence); the loop runs only
    `cell.step`, the recurrent product and the element-wise gate maths:

        P = project_inputs(x_1..T)                       (one matmul)
        for t in 1..T:  y_t, s_t = step(P_t, s_{t-1})    (masked: s_t = s_{t-1}, y_t = 0)

    The cell can be any cell of `layers/` (a `RecurrentCell`: `SimpleRNNCell`, `LSTMCell`,
    `GRUCell`, `MUTCell`). Cells that only implement the Keras cell API
    (`call(inputs, states)`) also work: their `call` runs inside the loop.

    Args:
        cell: A cell instance (or its serialised config).
        return_sequences: Return the outputs of all steps `[B, T, units]` (else the last
            output `[B, units]`).
        return_state: Also return the final states (`h`, and `c` for the LSTM).
        go_backwards: Process the sequence in reverse; the returned sequence is in the
            order of processing (as in `keras.layers.RNN`, which `Bidirectional` expects).
        stateful: Keep the final states of each batch as the initial states of the next
            (truncated BPTT); needs a fixed batch size; `reset_state()` zeroes them.
        use_cudnn: `"auto"`: on a GPU, a call that trains (a gradient is being recorded) a
            standard `LSTMCell()` or `GRUCell()` configuration without a mask runs Keras'
            cuDNN kernel (the one of `keras.layers.LSTM`/`GRU`) on the same weights; calls
            that only predict, and every trace for an export, run the suite's loop, so that
            SavedModels hold no cuDNN op and load on CPU-only machines. `True`: also with a
            mask (which must then be right-padded with no empty row, as cuDNN requires)
            and at inference (exports traced on a GPU then need a GPU). `False`: never.
        jit_compile: Compile the loop with XLA in calls that record no gradient
            (prediction, serving): several times lower latency for small batches on a CPU.
            Each new input shape compiles once. (To train with XLA, compile the whole
            train step: `model.compile(jit_compile=True)`.)
        fast_backward: In calls that record a gradient, use the suite's hand-written
            backward pass (see `layers.loop`); `False`: TensorFlow differentiates the loop
            (slower; the reference the hand-written pass is tested against).
        **kwargs: Arguments of `keras.layers.Layer`.

    Regularizers are options of the cell: `dropout`, `recurrent_dropout`,
    `output_dropout` (the output dropout lives on the cell: the layer's outputs are the
    cell's dropped outputs, while the carried and returned states are not dropped),
    `zoneout_cell`, `zoneout_hidden`, `recurrent_weight_dropout`. Masks are drawn once per
    call of this layer (one mask per sequence) and reused at every step.

    Call arguments:
        sequences: `[batch, time, features]`.
        initial_state: Optional list of initial state tensors (`cell.state_size` order).
        mask: Optional `[batch, time]` boolean mask (e.g. from
            `Embedding(mask_zero=True)`). A masked step leaves the states (and the last
            output) unchanged and outputs zeros in the returned sequence, so post-padded
            input gives the same last output and states as the unpadded sequence, and a
            fully masked row gives zeros.
        training: Whether dropout and zoneout are active.

    Example:

    ```python
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(1000, 32, mask_zero=True)(inputs)
    x = Bidirectional(Recurrent(LSTMCell(64), return_sequences=True))(x)
    outputs = Recurrent(GRUCell(64, dropout=0.2, recurrent_dropout=0.2))(x)
    model = keras.Model(inputs, outputs)
    ```
    """

    def __init__(
        self,
        cell,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        use_cudnn: bool | str = "auto",
        jit_compile: bool = False,
        fast_backward: bool = True,
        **kwargs,
    ):
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                f"`use_cudnn` must be 'auto', True or False. Received: use_cudnn={use_cudnn!r}"
            )
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if not isinstance(cell, keras.layers.Layer) or not hasattr(cell, "state_size"):
            raise ValueError(
                "`cell` must be a recurrent cell layer with a `state_size` (e.g. "
                f"`LSTMCell(64)` or `build_cell('lstm', 64)`). Received: cell={cell!r}"
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.use_cudnn = use_cudnn
        self.jit_compile = bool(jit_compile)
        self.fast_backward = bool(fast_backward)
        self.supports_masking = True
        self.input_spec = None
        self.states = None
        state_size = cell.state_size
        self.state_size = (
            list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]
        )

    @property
    def output_size(self) -> int:
        return getattr(self.cell, "output_size", None) or self.state_size[0]

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch_size, length = sequences_shape[0], sequences_shape[1]
        if self.return_sequences:
            output_shape = (batch_size, length, self.output_size)
        else:
            output_shape = (batch_size, self.output_size)
        if self.return_state:
            return (output_shape, *[(batch_size, size) for size in self.state_size])
        return output_shape

    def compute_mask(self, _, mask):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None for _ in self.state_size]
        return output_mask

    def build(self, sequences_shape, initial_state_shape=None):
        if len(sequences_shape) != 3:
            raise ValueError(
                "`Recurrent` expects inputs of shape [batch, time, features]; received "
                f"shape {tuple(sequences_shape)}."
            )
        if not self.cell.built:
            self.cell.build((sequences_shape[0], sequences_shape[2]))
            self.cell.built = True
        if self.stateful:
            if sequences_shape[0] is None:
                raise ValueError(
                    "A stateful `Recurrent` needs a fixed batch size: pass `batch_size=` "
                    f"(or `batch_shape=`) to `keras.Input`. Received shape {tuple(sequences_shape)}."
                )
            if self.states is None:
                self.states = [
                    self.add_weight(
                        shape=(sequences_shape[0], size),
                        initializer="zeros",
                        trainable=False,
                        name=f"state_{index}",
                    )
                    for index, size in enumerate(self.state_size)
                ]
        self.built = True

    def get_initial_state(self, batch_size):
        get_initial = getattr(self.cell, "get_initial_state", None)
        if get_initial is not None:
            states = get_initial(batch_size=batch_size)
            return list(states) if isinstance(states, (list, tuple)) else [states]
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def reset_state(self, states=None):
        """Zeroes the stateful states, or sets them to `states` (a list of arrays)."""
        if self.states is None:
            return
        if states is None:
            for variable in self.states:
                variable.assign(ops.zeros_like(variable))
            return
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) != len(self.states):
            raise ValueError(
                f"`reset_state` needs {len(self.states)} states, received {len(states)}."
            )
        for variable, value in zip(self.states, states):
            variable.assign(ops.convert_to_tensor(value, dtype=variable.dtype))

    def reset_states(self, states=None):
        """Alias of `reset_state`."""
        self.reset_state(states)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        cell = self.cell
        batch_size = ops.shape(sequences)[0]
        if initial_state is None:
            initial_state = (
                [ops.convert_to_tensor(v) for v in self.states]
                if self.stateful
                else self.get_initial_state(batch_size)
            )
        initial_state = (
            list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        )
        if len(initial_state) != len(self.state_size):
            raise ValueError(
                f"The cell has {len(self.state_size)} states (sizes {self.state_size}) but "
                f"`initial_state` holds {len(initial_state)} tensors."
            )
        kind = cudnn_handoff(
            cell,
            self.use_cudnn,
            has_mask=mask is not None,
            gpu_available=loop.gpu_available(),
            recording=loop.gradient_may_be_recorded(),
        )
        if kind is not None:
            handed_off = self._run_cudnn(kind, sequences, initial_state, mask, training)
            if handed_off is not None:
                return self._finish(*handed_off, time_major=False)

        two_part = hasattr(cell, "project_inputs") and hasattr(cell, "step")
        hooks_owner = _step_hooks_owner(cell) if two_part else None
        compute_dtype = cell.compute_dtype
        # Mixed precision (e.g. "mixed_bfloat16"): the matrix products run in the compute
        # dtype, the carried states and the element-wise maths of the loop in the variable
        # dtype (float32), as cuDNN and oneDNN do.
        mixed = hooks_owner is not None and compute_dtype != cell.variable_dtype
        loop_dtype = cell.variable_dtype if mixed else compute_dtype
        step_scope = _variables_uncast if mixed else contextlib.nullcontext
        initial_state = [ops.cast(state, loop_dtype) for state in initial_state]
        initial_output = ops.zeros((batch_size, self.output_size), dtype=loop_dtype)
        sequences_tm = ops.transpose(ops.cast(sequences, compute_dtype), (1, 0, 2))
        mask_tm = None
        if mask is not None:
            if isinstance(mask, (list, tuple)):
                mask = mask[0]
            mask_tm = ops.transpose(ops.cast(mask, "bool"), (1, 0))

        try:
            with step_scope():
                if hasattr(cell, "prepare_sequence"):
                    cell.prepare_sequence(sequences_tm[0], initial_state[0], training=training)
                elif training and hasattr(cell, "get_recurrent_dropout_mask"):  # Keras cells
                    cell.get_dropout_mask(sequences_tm[0])
                    cell.get_recurrent_dropout_mask(initial_state[0])
            if two_part:
                # One matrix product for the input side of all time steps.
                projected = cell.project_inputs(sequences_tm, training=training, time_major=True)
                projected = ops.cast(projected, loop_dtype)
                randomness = _sequence_randomness(cell)

                def step_fn(projected_t, states):
                    with _installed(randomness), step_scope():
                        return cell.step(projected_t, states, training=training)

            else:
                projected = sequences_tm

                def step_fn(inputs_t, states):
                    return cell(inputs_t, states, training=training)

                randomness = []

            last_output, outputs, states = loop.run_steps(
                step_fn,
                projected,
                initial_state,
                initial_output,
                mask=mask_tm,
                go_backwards=self.go_backwards,
                return_sequences=self.return_sequences,
                use_hooks=None if hooks_owner is None else hooks_owner.using_step_hooks,
                nondifferentiable=[
                    value for _, name, value in randomness if name != "_dropped_recurrent_kernel"
                ],
                matmul_dtype=compute_dtype if mixed else None,
                jit_compile=self.jit_compile,
                fast_backward=self.fast_backward,
            )
        finally:
            for reset in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
                if hasattr(cell, reset):
                    getattr(cell, reset)()

        return self._finish(last_output, outputs, states, time_major=True)

    def _finish(self, last_output, outputs, states, time_major: bool):
        if self.stateful:
            for variable, state in zip(self.states, states):
                variable.assign(ops.cast(state, variable.dtype))
        if self.return_sequences:
            output = ops.transpose(outputs, (1, 0, 2)) if time_major else outputs
        else:
            output = last_output
        output = ops.cast(output, self.compute_dtype)
        if self.return_state:
            return (output, *[ops.cast(state, self.compute_dtype) for state in states])
        return output

    def _run_cudnn(self, kind, sequences, initial_state, mask, training):
        """Keras' cuDNN LSTM/GRU on the cell's weights: `(last, outputs [B, T, H], states)`,
        or None where Keras' backend cannot run it here."""
        cell = self.cell
        sequences = ops.cast(sequences, cell.compute_dtype)
        initial_state = [ops.cast(state, cell.compute_dtype) for state in initial_state]
        try:
            if training and cell.dropout > 0:  # the input mask, as keras.layers.LSTM does
                input_mask = cell.get_dropout_mask(sequences[:, 0, :])
                sequences = sequences * ops.expand_dims(input_mask, 1)
            common = dict(
                kernel=cell.kernel,
                recurrent_kernel=cell.recurrent_kernel,
                bias=cell.bias,
                recurrent_activation=cell.recurrent_activation,
                return_sequences=self.return_sequences,
                go_backwards=self.go_backwards,
                unroll=False,
            )
            if kind == "lstm":
                last_output, outputs, states = keras_backend.lstm(
                    sequences,
                    initial_state[0],
                    initial_state[1],
                    mask,
                    activation=cell.input_activation,
                    **common,
                )
            else:
                last_output, outputs, states = keras_backend.gru(
                    sequences,
                    initial_state[0],
                    mask,
                    activation=cell.activation,
                    reset_after=True,
                    **common,
                )
        except NotImplementedError:
            if self.use_cudnn is True:
                raise ValueError(
                    "use_cudnn=True, but Keras cannot run cuDNN for this call here. Pass "
                    "use_cudnn='auto' to fall back to the suite's loop."
                ) from None
            return None
        finally:
            cell.reset_dropout_masks()
        return last_output, outputs, list(states)

    def get_config(self):
        config = {
            "cell": keras.saving.serialize_keras_object(self.cell),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "use_cudnn": self.use_cudnn,
            "jit_compile": self.jit_compile,
            "fast_backward": self.fast_backward,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cell = keras.saving.deserialize_keras_object(
            config.pop("cell"), custom_objects=custom_objects
        )
        return cls(cell, **config)
