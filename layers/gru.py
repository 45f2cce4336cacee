"""The gated recurrent unit, both reset placements, optionally layer-normalised."""

from __future__ import annotations

import keras
from keras import activations, ops

from layers.cell_base import HiddenStateCell, input_matmul, layer_norm

__all__ = ["GRUCell"]


@keras.saving.register_keras_serializable(package="rnn_suite")
class GRUCell(HiddenStateCell):
    """Gated recurrent unit (Cho et al. 2014), with the reset gate before or after U_h.

    Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for
    Statistical Machine Translation" (`reset_after=False`):

        z_t = sigma(x_t W_z + h_{t-1} U_z + b_z)                      update gate
        r_t = sigma(x_t W_r + h_{t-1} U_r + b_r)                      reset gate
        n_t = tanh(x_t W_h + (r_t * h_{t-1}) U_h + b_h)               candidate
        h_t = z_t * h_{t-1} + (1 - z_t) * n_t

    The cuDNN placement (`reset_after=True`, the Keras default) applies the reset gate
    after the recurrent product and has a second, recurrent bias:

        n_t = tanh(x_t W_h + b_h + r_t * (h_{t-1} U_h + b'_h))        (and b' in z, r)

    `layer_norm=True` normalises, as in Ba, Kiros & Hinton 2016, the input projection
    `x_t W` over all its blocks, and the recurrent projection: `h_{t-1} U` over all blocks
    (`reset_after=True`), or `h_{t-1} U_zr` and `(r_t * h_{t-1}) U_h` separately
    (`reset_after=False`), each with a learned gain, before the biases are added.

    Weights: `kernel` `(input_dim, 3 units)` and `recurrent_kernel` `(units, 3 units)` in
    the block order z, r, h; `bias` `(3 units,)` (`reset_after=False`) or `(2, 3 units)`
    (input and recurrent bias, `reset_after=True`): the layout of `keras.layers.GRUCell`.
    With layer norm, then `input_norm_gain` and `recurrent_norm_gain` `(3 units,)`.

    Args:
        units: Width of the hidden state.
        reset_after: Reset gate after the recurrent product (cuDNN, True) or before
            (Cho et al. 2014, False).
        activation: Activation of the candidate (tanh).
        recurrent_activation: Activation of the gates (sigmoid).
        layer_norm: Layer normalisation of the projections (Ba et al. 2016).
        layer_norm_epsilon: Epsilon of the layer norms.
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
    cell = GRUCell(64, reset_after=False)  # Cho et al. 2014
    y = Recurrent(cell)(keras.random.normal((8, 20, 3)))
    ```
    """

    def __init__(
        self,
        units: int,
        reset_after: bool = True,
        activation="tanh",
        recurrent_activation="sigmoid",
        layer_norm: bool = False,
        layer_norm_epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.reset_after = reset_after
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.layer_norm = layer_norm
        self.layer_norm_epsilon = layer_norm_epsilon

    @property
    def projection_size(self) -> int:
        return 3 * self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        width = 3 * self.units
        self.kernel = self._add_kernel(input_dim, width)
        self.recurrent_kernel = self._add_recurrent_kernel(width)
        self.bias = self._add_bias((2, width) if self.reset_after else (width,))
        if self.layer_norm:
            self.input_norm_gain = self._add_layer_norm_weight("input_norm_gain", width)
            self.recurrent_norm_gain = self._add_layer_norm_weight("recurrent_norm_gain", width)
        self.built = True

    def _norm(self, value, gain):
        return layer_norm(value, gain, epsilon=self.layer_norm_epsilon)

    def project_inputs(self, inputs, training=None, time_major: bool = False):
        return input_matmul(self._drop_inputs(inputs, training, time_major), self.kernel)

    def _new_hidden_state(self, projected_t, h_previous, h_recurrent, kernel):
        # The input norm and the bias act on one step's [B, P] slice, while it is in cache.
        if self.layer_norm:
            projected_t = self._norm(projected_t, self.input_norm_gain)
        if self.bias is not None:
            projected_t = projected_t + (self.bias[0] if self.reset_after else self.bias)
        units = self.units
        x_z, x_r, x_h = ops.split(projected_t, 3, axis=-1)
        if self.reset_after:
            recurrent = self._recurrent_matmul(h_recurrent, kernel)
            if self.layer_norm:
                recurrent = self._norm(recurrent, self.recurrent_norm_gain)
            if self.bias is not None:
                recurrent = recurrent + self.bias[1]
            rec_z, rec_r, rec_h = ops.split(recurrent, 3, axis=-1)
            z = self.recurrent_activation(x_z + rec_z)
            r = self.recurrent_activation(x_r + rec_r)
            candidate = self.activation(x_h + r * rec_h)
        else:
            recurrent = self._recurrent_matmul(h_recurrent, kernel, (0, 2 * units))
            if self.layer_norm:
                recurrent = self._norm(recurrent, self.recurrent_norm_gain[: 2 * units])
            rec_z, rec_r = ops.split(recurrent, 2, axis=-1)
            z = self.recurrent_activation(x_z + rec_z)
            r = self.recurrent_activation(x_r + rec_r)
            rec_h = self._recurrent_matmul(r * h_recurrent, kernel, (2 * units, 3 * units))
            if self.layer_norm:
                rec_h = self._norm(rec_h, self.recurrent_norm_gain[2 * units :])
            candidate = self.activation(x_h + rec_h)
        return z * h_previous + (1.0 - z) * candidate

    def get_config(self):
        config = {
            "reset_after": self.reset_after,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "layer_norm": self.layer_norm,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
        return {**super().get_config(), **config}
