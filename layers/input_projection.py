"""`InputProjectionCell`: a cell whose step input is first projected to a fixed width."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["InputProjectionCell", "needs_input_projection"]


def needs_input_projection(cell, input_dim: int) -> bool:
    """Whether `cell` cannot take `input_dim` features as they are: the MUT1 and MUT2 cells
    add the raw input to a vector of width `units` (Jozefowicz et al. 2015)."""
    return getattr(cell, "variant", None) in (1, 2) and int(input_dim) != int(cell.units)


@keras.saving.register_keras_serializable(package="rnn_suite")
class InputProjectionCell(keras.layers.Layer):
    """Wraps a recurrent cell so that its input is first projected linearly:

        x'_t = x_t W_p            (W_p: [input_dim, units], no bias)
        y_t, s_t = cell(x'_t, s_{t-1})

    Use it where a cell needs inputs of a given width, e.g. MUT1/MUT2 (input width ==
    `units`) fed with embeddings or with an attention decoder's `[y_{t-1}; a_{t-1}]`.
    It keeps the two-part cell API of the suite: `project_inputs` projects all steps
    at once (W_p, then the wrapped cell's input kernel) and `step` is the wrapped cell's,
    so `Recurrent` still runs only the recurrent part in its loop. Dropout masks and
    states are the wrapped cell's (input dropout acts on x'_t).

    Args:
        cell: the wrapped cell (e.g. `build_cell("mut1", 128)`).
        units: width of x'_t; defaults to `cell.units`.
        kernel_initializer: initializer of W_p.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[batch, input_dim]`; states: the wrapped cell's; training: bool.

    Example:

    ```python
    cell = InputProjectionCell(MUTCell(32, variant=1))
    y = Recurrent(cell)(keras.random.normal((8, 20, 7)))  # 7 features, not 32
    ```
    """

    def __init__(self, cell, units: int | None = None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        self.cell = cell
        self.units = int(units if units is not None else cell.units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.projection = keras.layers.Dense(
            self.units,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="input_projection",
        )

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return getattr(self.cell, "output_size", None) or self.cell.units

    @property
    def projection_size(self) -> int:
        return self.cell.projection_size

    def build(self, input_shape):
        self.projection.build(tuple(input_shape))
        if not self.cell.built:
            self.cell.build((input_shape[0], self.units))
        self.built = True

    def get_initial_state(self, batch_size=None):
        return self.cell.get_initial_state(batch_size=batch_size)

    # The sequence layer's per-sequence mask hooks, seen through the projection.
    def _projected_like(self, step_input):
        return ops.zeros((ops.shape(step_input)[0], self.units), dtype=self.compute_dtype)

    def prepare_sequence(self, step_input, step_state, training=None):
        if hasattr(self.cell, "prepare_sequence"):
            self.cell.prepare_sequence(self._projected_like(step_input), step_state, training=training)

    def get_dropout_mask(self, step_input):
        if hasattr(self.cell, "get_dropout_mask"):
            return self.cell.get_dropout_mask(self._projected_like(step_input))
        return None

    def get_recurrent_dropout_mask(self, step_state):
        if hasattr(self.cell, "get_recurrent_dropout_mask"):
            return self.cell.get_recurrent_dropout_mask(step_state)
        return None

    def reset_dropout_mask(self):
        if hasattr(self.cell, "reset_dropout_mask"):
            self.cell.reset_dropout_mask()

    def reset_recurrent_dropout_mask(self):
        if hasattr(self.cell, "reset_recurrent_dropout_mask"):
            self.cell.reset_recurrent_dropout_mask()

    def project_inputs(self, inputs, training=None, time_major: bool = False):
        return self.cell.project_inputs(self.projection(inputs), training=training, time_major=time_major)

    def step(self, projected_t, states, training=None):
        return self.cell.step(projected_t, states, training=training)

    def call(self, inputs, states, training=None):
        return self.cell(self.projection(inputs), states, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=keras.saving.serialize_keras_object(self.cell),
            units=self.units,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
