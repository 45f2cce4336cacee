"""The Elman recurrent cell (tanh or ReLU), with the IRNN initialisation of Le et al. 2015."""

from __future__ import annotations

import keras
from keras import activations, initializers

from layers.cell_base import HiddenStateCell, input_matmul

__all__ = ["SimpleRNNCell"]


@keras.saving.register_keras_serializable(package="rnn_suite")
class SimpleRNNCell(HiddenStateCell):
    """Elman recurrent cell; with ReLU and `identity_init=True`, the IRNN.

    Elman 1990, "Finding Structure in Time":

        h_t = act(x_t W + h_{t-1} U + b)

    IRNN (Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of
    Rectified Linear Units"): `activation="relu"`, `U` initialised to the identity and `b`
    to zero (`identity_init=True`).

    Weights: `kernel` `(input_dim, units)`, `recurrent_kernel` `(units, units)`, `bias`
    `(units,)`, the layout of `keras.layers.SimpleRNNCell`.

    Args:
        units: Width of the hidden state.
        activation: `"tanh"` (default) or `"relu"` (any Keras activation works).
        identity_init: Initialise `recurrent_kernel` to the identity and `bias` to zero,
            overriding `recurrent_initializer` and `bias_initializer`.
        **kwargs: The arguments of `RecurrentCell` (initializers, regularizers,
            constraints, `dropout`, `recurrent_dropout`, `output_dropout`,
            `zoneout_hidden`, `recurrent_weight_dropout`, `seed`) and of
            `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, input_dim]` (one step).
        states: `[h]` or `h`, `[batch, units]`.
        training: Whether dropout and zoneout are active.

    Masking is done by the sequence layer (`Recurrent` or `keras.layers.RNN`).

    Example:

    ```python
    cell = SimpleRNNCell(64, activation="relu", identity_init=True)  # IRNN
    y = Recurrent(cell)(keras.random.normal((8, 20, 3)))  # (8, 64)
    ```
    """

    def __init__(
        self,
        units: int,
        activation="tanh",
        identity_init: bool = False,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.activation = activations.get(activation)
        self.identity_init = identity_init

    @property
    def projection_size(self) -> int:
        return self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self._add_kernel(input_dim, self.units)
        if self.identity_init:
            self.recurrent_kernel = self._add_recurrent_kernel(
                self.units, initializer=initializers.Identity()
            )
            self.bias = self._add_bias((self.units,), initializer=initializers.Zeros())
        else:
            self.recurrent_kernel = self._add_recurrent_kernel(self.units)
            self.bias = self._add_bias((self.units,))
        self.built = True

    def project_inputs(self, inputs, training=None, time_major: bool = False):
        return input_matmul(self._drop_inputs(inputs, training, time_major), self.kernel)

    def _new_hidden_state(self, projected_t, h_previous, h_recurrent, kernel):
        pre_activation = projected_t + self._recurrent_matmul(h_recurrent, kernel)
        if self.bias is not None:  # added per step, while the [B, units] slice is in cache
            pre_activation = pre_activation + self.bias
        return self.activation(pre_activation)

    def get_config(self):
        config = {
            "activation": activations.serialize(self.activation),
            "identity_init": self.identity_init,
        }
        return {**super().get_config(), **config}
