"""The evolved recurrent cells MUT1, MUT2 and MUT3 of Jozefowicz, Zaremba & Sutskever 2015."""

from __future__ import annotations

import keras
from keras import ops

from layers.cell_base import HiddenStateCell, input_matmul

__all__ = ["MUTCell"]


@keras.saving.register_keras_serializable(package="rnn_suite")
class MUTCell(HiddenStateCell):
    """The architectures MUT1, MUT2, MUT3 found by evolutionary search.

    Jozefowicz, Zaremba & Sutskever 2015, "An Empirical Exploration of Recurrent Network
    Architectures", section 3.5 (sigma is the logistic sigmoid):

        MUT1:
        z = sigma(x_t W_xz + b_z)
        r = sigma(x_t W_xr + h_{t-1} W_hr + b_r)
        h_t = tanh((r * h_{t-1}) W_hh + tanh(x_t) + b_h) * z + h_{t-1} * (1 - z)

        MUT2:
        z = sigma(x_t W_xz + h_{t-1} W_hz + b_z)
        r = sigma(x_t + h_{t-1} W_hr + b_r)
        h_t = tanh((r * h_{t-1}) W_hh + x_t W_xh + b_h) * z + h_{t-1} * (1 - z)

        MUT3:
        z = sigma(x_t W_xz + tanh(h_{t-1}) W_hz + b_z)
        r = sigma(x_t W_xr + h_{t-1} W_hr + b_r)
        h_t = tanh((r * h_{t-1}) W_hh + x_t W_xh + b_h) * z + h_{t-1} * (1 - z)

    MUT1 and MUT2 add the raw input `x_t` to a vector of width `units`, so they need
    `input_dim == units` (a `ValueError` says so otherwise; put a `Dense(units)` in
    front). `project_inputs` returns `[x W_xz, x W_xr, tanh(x)]` (MUT1),
    `[x W_xz, x, x W_xh]` (MUT2) or the three projections (MUT3): the raw-input parts
    travel inside the projection; `step` adds the bias `[b_z, b_r, b_h]`.

    Weights: `kernel` `(input_dim, k units)` with the input matrices in the order z, r, h
    that the variant has (MUT1: z, r; MUT2: z, h; MUT3: z, r, h); `recurrent_kernel`
    `(units, k units)` likewise (MUT1: r, h; MUT2 and MUT3: z, r, h); `bias` `(3 units,)`
    in the order z, r, h.

    Args:
        units: Width of the hidden state.
        variant: 1, 2 or 3.
        **kwargs: Arguments of `RecurrentCell` (initializers, regularizers, constraints,
            `dropout`, `recurrent_dropout`, `output_dropout`, `zoneout_hidden`,
            `recurrent_weight_dropout`, `seed`) and `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, input_dim]` (one step).
        states: `[h]` or `h`, `[batch, units]`.
        training: Whether dropout and zoneout are active.

    Masking is done by the sequence layer (`Recurrent` or `keras.layers.RNN`).

    Example:

    ```python
    cell = MUTCell(32, variant=1)  # inputs must have 32 features
    y = Recurrent(cell)(keras.random.normal((8, 20, 32)))
    ```
    """

    _INPUT_BLOCKS = {1: ("z", "r"), 2: ("z", "h"), 3: ("z", "r", "h")}
    _RECURRENT_BLOCKS = {1: ("r", "h"), 2: ("z", "r", "h"), 3: ("z", "r", "h")}

    def __init__(self, units: int, variant: int = 1, **kwargs):
        if variant not in (1, 2, 3):
            raise ValueError(f"`variant` must be 1, 2 or 3 (MUT1-3). Received: {variant!r}")
        super().__init__(units, **kwargs)
        self.variant = variant

    @property
    def projection_size(self) -> int:
        return 3 * self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if self.variant in (1, 2) and input_dim != self.units:
            raise ValueError(
                f"MUT{self.variant} adds the raw input to a vector of width units={self.units}, "
                f"so its input width must equal `units`; received inputs of width {input_dim}. "
                f"Project the inputs first (e.g. `keras.layers.Dense({self.units})`), or use "
                "`variant=3`."
            )
        self.kernel = self._add_kernel(
            input_dim, len(self._INPUT_BLOCKS[self.variant]) * self.units
        )
        self.recurrent_kernel = self._add_recurrent_kernel(
            len(self._RECURRENT_BLOCKS[self.variant]) * self.units
        )
        self.bias = self._add_bias((3 * self.units,))
        self.built = True

    def project_inputs(self, inputs, training=None, time_major: bool = False):
        inputs = self._drop_inputs(inputs, training, time_major)
        projected = input_matmul(inputs, self.kernel)
        if self.variant == 1:
            projected = ops.concatenate([projected, ops.tanh(inputs)], axis=-1)
        elif self.variant == 2:
            x_z, x_h = ops.split(projected, 2, axis=-1)
            projected = ops.concatenate([x_z, inputs, x_h], axis=-1)
        return projected

    def _new_hidden_state(self, projected_t, h_previous, h_recurrent, kernel):
        if self.bias is not None:
            projected_t = projected_t + self.bias
        units = self.units
        p_z, p_r, p_h = ops.split(projected_t, 3, axis=-1)
        if self.variant == 1:
            z = ops.sigmoid(p_z)
            r = ops.sigmoid(p_r + self._recurrent_matmul(h_recurrent, kernel, (0, units)))
        elif self.variant == 2:
            rec_z, rec_r = ops.split(
                self._recurrent_matmul(h_recurrent, kernel, (0, 2 * units)), 2, axis=-1
            )
            z = ops.sigmoid(p_z + rec_z)
            r = ops.sigmoid(p_r + rec_r)
        else:
            z = ops.sigmoid(p_z + self._recurrent_matmul(ops.tanh(h_recurrent), kernel, (0, units)))
            r = ops.sigmoid(p_r + self._recurrent_matmul(h_recurrent, kernel, (units, 2 * units)))
        width = kernel.shape[-1]
        candidate = ops.tanh(
            self._recurrent_matmul(r * h_recurrent, kernel, (width - units, width)) + p_h
        )
        return candidate * z + h_previous * (1.0 - z)

    def get_config(self):
        return {**super().get_config(), "variant": self.variant}
