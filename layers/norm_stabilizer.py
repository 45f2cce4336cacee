"""The norm-stabilizer penalty of Krueger & Memisevic 2016 as a pass-through layer."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["NormStabilizer"]


@keras.saving.register_keras_serializable(package="rnn_suite")
class NormStabilizer(keras.layers.Layer):
    """Adds the norm-stabilizer penalty on a sequence of hidden states; returns it unchanged.

    Krueger & Memisevic 2016, "Regularizing RNNs by Stabilizing Activations":

        loss = beta / T * sum_t (||h_t||_2 - ||h_{t-1}||_2)^2

    computed per sequence over the consecutive pairs of the sequence it receives
    (`t = 2..T`; the initial state is not part of the input) and averaged over the batch,
    then added with `add_loss`. With a mask, only pairs of two valid steps count and T is
    the number of valid steps of that sequence (a fully masked sequence adds 0). Place it
    on the hidden states, e.g. after `Recurrent(cell, return_sequences=True)` (with
    `output_dropout=0`, since output dropout would be applied before it).

    Args:
        beta: Weight of the penalty (the paper uses values from 1 to 500).
        **kwargs: Arguments of `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, time, units]` hidden states.
        mask: Optional `[batch, time]` boolean mask, propagated unchanged.

    Example:

    ```python
    h = Recurrent(LSTMCell(128), return_sequences=True)(x)
    h = NormStabilizer(beta=50.0)(h)
    ```
    """

    def __init__(self, beta: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if beta < 0:
            raise ValueError(f"`beta` must be non-negative. Received: beta={beta}")
        self.beta = float(beta)
        self.supports_masking = True

    def penalty(self, inputs, mask=None):
        """The penalty for `inputs` `[B, T, U]` (and an optional `[B, T]` mask)."""
        inputs = ops.convert_to_tensor(inputs)
        squared = ops.sum(ops.square(inputs), axis=-1)
        positive = ops.greater(squared, 0.0)
        # Norm with a zero (not NaN) gradient at the zero vector.
        norms = ops.where(positive, ops.sqrt(ops.where(positive, squared, 1.0)), 0.0)
        differences = ops.square(norms[:, 1:] - norms[:, :-1])
        if mask is None:
            steps = ops.cast(ops.shape(inputs)[1], inputs.dtype)
            per_sequence = ops.sum(differences, axis=1) / ops.maximum(steps, 1.0)
        else:
            valid = ops.cast(mask, inputs.dtype)
            pairs = valid[:, 1:] * valid[:, :-1]
            steps = ops.maximum(ops.sum(valid, axis=1), 1.0)
            per_sequence = ops.sum(differences * pairs, axis=1) / steps
        return self.beta * ops.mean(per_sequence)

    def call(self, inputs, mask=None):
        if self.beta > 0:
            self.add_loss(self.penalty(inputs, mask))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}
