"""The LSTM cell with the switches of Greff et al. 2017 and the layer norm of Ba et al. 2016."""

from __future__ import annotations

import keras
from keras import activations, initializers, ops

from layers.cell_base import (
    RecurrentCell,
    get_activation,
    input_matmul,
    layer_norm,
    serialize_activation,
)

__all__ = ["LSTMCell", "GREFF_VARIANTS"]

_PEEPHOLE_NAMES = {"i": "input_peephole", "f": "forget_peephole", "o": "output_peephole"}

_SWITCH_DEFAULTS = {
    "input_gate": True,
    "forget_gate": True,
    "output_gate": True,
    "input_activation": "tanh",
    "output_activation": "tanh",
    "peepholes": True,
    "coupled_input_forget": False,
    "full_gate_recurrence": False,
}


def _variant(**changes) -> dict:
    return {**_SWITCH_DEFAULTS, **changes}


#: The eight LSTM variants of Greff et al. 2017 and their "vanilla" baseline (which has
#: peepholes), as `LSTMCell` keyword arguments.
GREFF_VARIANTS: dict[str, dict] = {
    "vanilla": _variant(),
    "nig": _variant(input_gate=False),
    "nfg": _variant(forget_gate=False),
    "nog": _variant(output_gate=False),
    "niaf": _variant(input_activation=None),
    "noaf": _variant(output_activation=None),
    "np": _variant(peepholes=False),
    "cifg": _variant(coupled_input_forget=True),
    "fgr": _variant(full_gate_recurrence=True),
}


@keras.saving.register_keras_serializable(package="rnn_suite")
class LSTMCell(RecurrentCell):
    """Long short-term memory cell with every switch of "LSTM: A Search Space Odyssey".

    Hochreiter & Schmidhuber 1997; forget gate of Gers, Schmidhuber & Cummins 2000;
    peepholes of Gers & Schmidhuber 2000; notation of Greff et al. 2017:

        z_t = g(x_t W_z + h_{t-1} R_z + b_z)                          block input
        i_t = sigma(x_t W_i + h_{t-1} R_i + p_i * c_{t-1} + b_i)      input gate
        f_t = sigma(x_t W_f + h_{t-1} R_f + p_f * c_{t-1} + b_f)      forget gate
        c_t = z_t * i_t + c_{t-1} * f_t                               memory cell
        o_t = sigma(x_t W_o + h_{t-1} R_o + p_o * c_t + b_o)          output gate
        h_t = act(c_t) * o_t                                          output

    The switches give the variants of Greff et al. 2017 (`GREFF_VARIANTS`):
    NIG `input_gate=False` (i = 1), NFG `forget_gate=False` (f = 1), NOG
    `output_gate=False` (o = 1), NIAF `input_activation=None` (g linear), NOAF
    `output_activation=None` (act linear), NP `peepholes=False`, CIFG
    `coupled_input_forget=True` (f = 1 - i, no forget-gate weights), FGR
    `full_gate_recurrence=True`: every gate also reads the gate activations of the
    previous step, `... + [i, f, o]_{t-1} R_gates`, which are then carried as a third
    state of width `(number of gates) * units`.

    `forget_bias` (Gers et al. 2000; Jozefowicz et al. 2015) is added to the initial
    forget-gate bias. `layer_norm=True` is the layer-normalised LSTM of Ba, Kiros & Hinton
    2016, "Layer Normalization":

        [gates] = LN(x_t W; alpha_x) + LN(h_{t-1} R; alpha_h) + b (+ peepholes, FGR)
        h_t = o_t * act(LN(c_t; alpha_c, beta_c))

    with the norm taken over the whole pre-activation vector of all blocks, as in the
    paper (the shifts of the two projection norms are folded into `b`).

    Weights: `kernel` `(input_dim, n * units)`, `recurrent_kernel` `(units, n * units)`,
    `bias` `(n * units,)` with the blocks in the Keras order i, f, c, o, leaving out the
    blocks a variant does not have (n = 4 for the standard LSTM, the exact layout of
    `keras.layers.LSTMCell`); then the peepholes `input_peephole`, `forget_peephole`,
    `output_peephole` `(units,)`, `gate_recurrent_kernel`, then the layer-norm weights
    `input_norm_gain`, `recurrent_norm_gain`, `cell_norm_gain`, `cell_norm_shift`.

    Args:
        units: Width of the hidden state and memory cell.
        forget_bias: Added to the initial forget-gate bias (1.0 is Keras'
            `unit_forget_bias=True`).
        input_gate, forget_gate, output_gate: Whether the gate exists (else it is 1).
        input_activation: Activation g of the block input; `None` for linear.
        output_activation: Activation of the memory cell in the output; `None` for linear.
        recurrent_activation: Activation of the gates (sigmoid).
        peepholes: Diagonal peephole connections (i and f read c_{t-1}, o reads c_t).
        coupled_input_forget: f = 1 - i (CIFG).
        full_gate_recurrence: Gates read all gate activations of the previous step (FGR).
        layer_norm: Layer normalisation of Ba et al. 2016.
        layer_norm_epsilon: Epsilon of the layer norms.
        peephole_initializer: Initializer of the peephole vectors.
        gate_recurrent_initializer: Initializer of `gate_recurrent_kernel`.
        **kwargs: Arguments of `RecurrentCell` (initializers, regularizers, constraints,
            `dropout`, `recurrent_dropout`, `output_dropout`, `zoneout_cell`,
            `zoneout_hidden`, `recurrent_weight_dropout`, `seed`) and `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, input_dim]` (one step).
        states: `[h, c]` (and `[h, c, gates]` with FGR), each `[batch, width]`.
        training: Whether dropout and zoneout are active.

    Masking is done by the sequence layer (`Recurrent` or `keras.layers.RNN`).

    Example:

    ```python
    cell = LSTMCell(64, **GREFF_VARIANTS["cifg"])
    y = Recurrent(cell, return_sequences=True)(keras.random.normal((8, 20, 3)))
    ```
    """

    has_cell_state = True

    def __init__(
        self,
        units: int,
        forget_bias: float = 1.0,
        input_gate: bool = True,
        forget_gate: bool = True,
        output_gate: bool = True,
        input_activation="tanh",
        output_activation="tanh",
        recurrent_activation="sigmoid",
        peepholes: bool = False,
        coupled_input_forget: bool = False,
        full_gate_recurrence: bool = False,
        layer_norm: bool = False,
        layer_norm_epsilon: float = 1e-3,
        peephole_initializer="glorot_uniform",
        gate_recurrent_initializer="orthogonal",
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        if coupled_input_forget and not (input_gate and forget_gate):
            raise ValueError(
                "`coupled_input_forget=True` (CIFG, f = 1 - i) needs `input_gate=True` and "
                f"`forget_gate=True`. Received input_gate={input_gate}, "
                f"forget_gate={forget_gate}."
            )
        self.forget_bias = float(forget_bias)
        self.input_gate = input_gate
        self.forget_gate = forget_gate
        self.output_gate = output_gate
        self.input_activation = get_activation(input_activation)
        self.output_activation = get_activation(output_activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.peepholes = peepholes
        self.coupled_input_forget = coupled_input_forget
        self.full_gate_recurrence = full_gate_recurrence
        self.layer_norm = layer_norm
        self.layer_norm_epsilon = layer_norm_epsilon
        self.peephole_initializer = initializers.get(peephole_initializer)
        self.gate_recurrent_initializer = initializers.get(gate_recurrent_initializer)

        learned_forget = forget_gate and not coupled_input_forget
        self.blocks = tuple(
            name
            for name, present in (
                ("i", input_gate),
                ("f", learned_forget),
                ("c", True),
                ("o", output_gate),
            )
            if present
        )
        self.gates = tuple(name for name in self.blocks if name != "c")
        if full_gate_recurrence and not self.gates:
            raise ValueError(
                "`full_gate_recurrence=True` needs at least one gate; all three are off."
            )
        self.state_size = [units, units]
        if full_gate_recurrence:
            self.state_size.append(len(self.gates) * units)

    @property
    def projection_size(self) -> int:
        return len(self.blocks) * self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        width = self.projection_size
        self.kernel = self._add_kernel(input_dim, width)
        self.recurrent_kernel = self._add_recurrent_kernel(width)

        def bias_initializer(shape, dtype=None):
            parts = []
            for name in self.blocks:
                part = self.bias_initializer((self.units,), dtype=dtype)
                if name == "f":
                    part = part + self.forget_bias
                parts.append(part)
            return ops.concatenate(parts, axis=0)

        self.bias = self._add_bias((width,), initializer=bias_initializer)
        self.input_peephole = self.forget_peephole = self.output_peephole = None
        if self.peepholes:
            for gate in self.gates:
                name = _PEEPHOLE_NAMES[gate]
                weight = self.add_weight(
                    shape=(self.units,), name=name, initializer=self.peephole_initializer
                )
                setattr(self, name, weight)
        if self.full_gate_recurrence:
            gates_width = len(self.gates) * self.units
            self.gate_recurrent_kernel = self.add_weight(
                shape=(gates_width, gates_width),
                name="gate_recurrent_kernel",
                initializer=self.gate_recurrent_initializer,
                regularizer=self.recurrent_regularizer,
                constraint=self.recurrent_constraint,
            )
        if self.layer_norm:
            self.input_norm_gain = self._add_layer_norm_weight("input_norm_gain", width)
            self.recurrent_norm_gain = self._add_layer_norm_weight("recurrent_norm_gain", width)
            self.cell_norm_gain = self._add_layer_norm_weight("cell_norm_gain", self.units)
            self.cell_norm_shift = self._add_layer_norm_weight(
                "cell_norm_shift", self.units, initializer="zeros"
            )
        self.built = True

    def project_inputs(self, inputs, training=None, time_major: bool = False):
        return input_matmul(self._drop_inputs(inputs, training, time_major), self.kernel)

    def step(self, projected_t, states, training=None):
        h_previous, c_previous = states[0], states[1]
        # The input norm and the bias act on one step's [B, P] slice, while it is in cache.
        if self.layer_norm:
            projected_t = layer_norm(
                projected_t, self.input_norm_gain, epsilon=self.layer_norm_epsilon
            )
        if self.bias is not None:
            projected_t = projected_t + self.bias
        recurrent = self._recurrent_matmul(
            self._drop_recurrent(h_previous, training), self._recurrent_kernel_value(training)
        )
        if self.layer_norm:
            recurrent = layer_norm(
                recurrent, self.recurrent_norm_gain, epsilon=self.layer_norm_epsilon
            )
        pre = dict(zip(self.blocks, ops.split(projected_t + recurrent, len(self.blocks), axis=-1)))
        if self.full_gate_recurrence:
            gate_terms = ops.split(
                self._recurrent_matmul(states[2], self.gate_recurrent_kernel),
                len(self.gates),
                axis=-1,
            )
            for gate, term in zip(self.gates, gate_terms):
                pre[gate] = pre[gate] + term

        def gate(name, cell):
            value = pre[name]
            peephole = getattr(self, _PEEPHOLE_NAMES[name])
            if peephole is not None:
                value = value + peephole * cell
            return self.recurrent_activation(value)

        block_input = self.input_activation(pre["c"])
        i = gate("i", c_previous) if self.input_gate else None
        if self.coupled_input_forget:
            f = 1.0 - i
        elif self.forget_gate:
            f = gate("f", c_previous)
        else:
            f = None
        c_new = block_input if i is None else block_input * i
        c_new = c_new + (c_previous if f is None else c_previous * f)
        o = gate("o", c_new) if self.output_gate else None
        c_out = c_new
        if self.layer_norm:
            c_out = layer_norm(
                c_new, self.cell_norm_gain, self.cell_norm_shift, epsilon=self.layer_norm_epsilon
            )
        h_new = self.output_activation(c_out)
        if o is not None:
            h_new = h_new * o

        c_state = self._zoneout(c_previous, c_new, self.zoneout_cell, training)
        h_state, output = self._finish_step(h_previous, h_new, training)
        new_states = [h_state, c_state]
        if self.full_gate_recurrence:
            activations_by_gate = {"i": i, "f": f, "o": o}
            new_states.append(
                ops.concatenate([activations_by_gate[name] for name in self.gates], axis=-1)
            )
        return output, new_states

    def get_config(self):
        config = {
            "forget_bias": self.forget_bias,
            "input_gate": self.input_gate,
            "forget_gate": self.forget_gate,
            "output_gate": self.output_gate,
            "input_activation": serialize_activation(self.input_activation),
            "output_activation": serialize_activation(self.output_activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "peepholes": self.peepholes,
            "coupled_input_forget": self.coupled_input_forget,
            "full_gate_recurrence": self.full_gate_recurrence,
            "layer_norm": self.layer_norm,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "peephole_initializer": initializers.serialize(self.peephole_initializer),
            "gate_recurrent_initializer": initializers.serialize(self.gate_recurrent_initializer),
        }
        return {**super().get_config(), **config}
