"""Attention over an encoder memory for recurrent decoders.

`BahdanauAttention` (additive) and `LuongAttention` (dot / general / concat) score a
query against a memory and return the context vector and the alignment weights.
`AttentionDecoderCell` wraps any Keras-API recurrent cell with attention and Luong input
feeding, and `AttentionDecoder` runs it over a whole target sequence (teacher forcing),
returning the alignment history for plots.

Only `keras.ops` is used. Keras 3's `RNN` layer has no `constants` argument, so the
memory is passed explicitly to every call (see `AttentionDecoderCell`).
"""

from __future__ import annotations

import keras
from keras import ops

SCORE_FUNCTIONS = ("dot", "general", "concat")


def _large_negative(dtype) -> float:
    return -3e4 if "float16" in str(dtype) else -1e9


def masked_softmax(scores, mask=None):
    """Softmax over the last axis that is exactly 0 where `mask` is False.

    Rows whose positions are all masked get all-zero weights (no NaN).

    Args:
        scores: float tensor [..., S].
        mask: optional bool tensor broadcastable to `scores`.
    """
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    filled = ops.where(mask, scores, ops.full_like(scores, _large_negative(scores.dtype)))
    weights = ops.softmax(filled, axis=-1)
    return weights * ops.cast(mask, weights.dtype)


class _Attention(keras.layers.Layer):
    """Shared logic: precomputed keys, masked softmax, context = sum_s a_s * memory_s."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def setup_memory(self, memory, memory_mask=None):
        """Returns the memory keys (the memory-side projection) to reuse at every step.

        Pass the result as `memory_keys=` to `call` so that decoders project the memory
        once per sequence rather than once per step. `memory_mask` is accepted for
        symmetry and ignored (masking happens in `call`).
        """
        del memory_mask
        return self._process_memory(memory)

    def _process_memory(self, memory):
        raise NotImplementedError

    def _score(self, query, memory_keys):
        raise NotImplementedError

    def call(self, query, memory, memory_mask=None, memory_keys=None):
        if memory_keys is None:
            memory_keys = self._process_memory(memory)
        scores = self._score(query, memory_keys)
        alignments = masked_softmax(scores, memory_mask)
        context = ops.einsum("bs,bsd->bd", alignments, ops.cast(memory, alignments.dtype))
        return context, alignments

    def compute_mask(self, query, previous_mask=None):
        return None

    def compute_output_shape(self, query_shape, memory_shape, **kwargs):
        batch = query_shape[0]
        return (batch, memory_shape[-1]), (batch, memory_shape[1])


@keras.saving.register_keras_serializable(package="rnn_suite")
class BahdanauAttention(_Attention):
    """Additive attention (Bahdanau et al. 2015).

    For a query q [Hq] and memory h_1..h_S [Hm] (Bahdanau, Cho and Bengio 2015, "Neural
    Machine Translation by Jointly Learning to Align and Translate"):

        e_s = v^T tanh(W1 q + W2 h_s)
        a = softmax(e) over the unmasked positions,   context = sum_s a_s h_s

    with W1 [Hq, units], W2 [Hm, units] and v [units] learned. W2 h_s does not depend on
    the query: `setup_memory(memory)` computes it once per sequence.

    Args:
        units: int, size of the hidden layer of the score.
        kernel_initializer: initializer of W1, W2 and v. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments.

    Call arguments:
        query: float tensor [B, Hq].
        memory: float tensor [B, S, Hm] (the values; also the keys before projection).
        memory_mask: optional bool tensor [B, S], True at valid source positions; taken
            from the Keras mask of `memory` when present.
        memory_keys: optional precomputed `setup_memory(memory)`, [B, S, units].

    Returns:
        `(context [B, Hm], alignments [B, S])`. Alignments are exactly 0 at masked
        positions and sum to 1 over the rest; an all-masked row gives zeros.

    Example:
    >>> attention = BahdanauAttention(8)
    >>> memory = keras.random.normal((2, 5, 6))
    >>> keys = attention.setup_memory(memory)
    >>> context, alignments = attention(keras.random.normal((2, 4)), memory, memory_keys=keys)
    >>> tuple(context.shape), tuple(alignments.shape)
    ((2, 6), (2, 5))
    """

    def __init__(self, units: int, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.query_dense = keras.layers.Dense(
            self.units,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="query_dense",
        )
        self.memory_dense = keras.layers.Dense(
            self.units,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="memory_dense",
        )

    def build(self, query_shape, memory_shape):
        if not self.query_dense.built:
            self.query_dense.build(query_shape)
        if not self.memory_dense.built:
            self.memory_dense.build(memory_shape)
        self.attention_v = self.add_weight(
            name="attention_v", shape=(self.units,), initializer=self.kernel_initializer
        )

    def _process_memory(self, memory):
        return self.memory_dense(memory)

    def _score(self, query, memory_keys):
        hidden = ops.tanh(self.query_dense(query)[:, None, :] + memory_keys)
        return ops.einsum("bsu,u->bs", hidden, ops.cast(self.attention_v, hidden.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="rnn_suite")
class LuongAttention(_Attention):
    """Multiplicative / global attention (Luong et al. 2015).

    For a query h_t [Hq] (the decoder's current output) and memory h_1..h_S [Hm]
    (Luong, Pham and Manning 2015, "Effective Approaches to Attention-based Neural
    Machine Translation"):

        dot:      e_s = h_t^T h_s                        (needs Hq == Hm)
        general:  e_s = h_t^T W_a h_s                    (W_a [Hm, Hq]; units == Hq)
        concat:   e_s = v^T tanh(W_a [h_t; h_s]) = v^T tanh(W1 h_t + W2 h_s)
        a = softmax(g * e) over the unmasked positions,  context = sum_s a_s h_s

    with g a learned scalar (initialised to 1) when `scale=True` (else g = 1). The
    memory-side products W_a h_s and W2 h_s are what `setup_memory` precomputes.

    Args:
        units: int; for "general" it must equal the query size (it may be `None`, then
            the query size is used); for "concat" the hidden size; unused for "dot".
        score: "dot", "general" or "concat". Defaults to `"general"`.
        scale: bool, learn the scalar g. Defaults to `False`.
        kernel_initializer: initializer of the projections. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments.

    Call arguments:
        query: float tensor [B, Hq].
        memory: float tensor [B, S, Hm].
        memory_mask: optional bool tensor [B, S]; taken from the Keras mask of `memory`.
        memory_keys: optional precomputed `setup_memory(memory)`.

    Returns:
        `(context [B, Hm], alignments [B, S])`, masked as in `BahdanauAttention`.

    Example:
    >>> attention = LuongAttention(4, score="general")
    >>> memory = keras.random.normal((2, 5, 6))
    >>> context, alignments = attention(keras.random.normal((2, 4)), memory)
    >>> tuple(context.shape), tuple(alignments.shape)
    ((2, 6), (2, 5))
    """

    def __init__(
        self,
        units: int | None = None,
        score: str = "general",
        scale: bool = False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if score not in SCORE_FUNCTIONS:
            raise ValueError(f"Unknown Luong score {score!r}; expected one of {SCORE_FUNCTIONS}.")
        if score == "concat" and units is None:
            raise ValueError("LuongAttention(score='concat') needs `units`.")
        self.units = None if units is None else int(units)
        self.score = score
        self.scale = scale
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.memory_dense = None
        self.query_dense = None

    def _dense(self, units, name):
        return keras.layers.Dense(
            units,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, memory_shape):
        query_size, memory_size = query_shape[-1], memory_shape[-1]
        if self.score == "dot" and query_size != memory_size:
            raise ValueError(
                f"LuongAttention(score='dot') needs query and memory of equal size; got "
                f"query size {query_size} and memory size {memory_size}. Use score='general'."
            )
        if self.score == "general":
            if self.units is not None and self.units != query_size:
                raise ValueError(
                    f"LuongAttention(score='general') needs units == query size; got units="
                    f"{self.units} and query size {query_size}."
                )
            self.memory_dense = self._dense(query_size, "memory_dense")
            self.memory_dense.build(memory_shape)
        elif self.score == "concat":
            self.query_dense = self._dense(self.units, "query_dense")
            self.query_dense.build(query_shape)
            self.memory_dense = self._dense(self.units, "memory_dense")
            self.memory_dense.build(memory_shape)
            self.attention_v = self.add_weight(
                name="attention_v", shape=(self.units,), initializer=self.kernel_initializer
            )
        if self.scale:
            self.attention_g = self.add_weight(name="attention_g", shape=(), initializer="ones")

    def _process_memory(self, memory):
        if self.score == "dot":
            return memory
        if self.memory_dense is None:
            raise ValueError(
                f"{self.__class__.__name__} '{self.name}' is not built: call it once (or "
                "build it) before `setup_memory` so that the query size is known."
            )
        return self.memory_dense(memory)

    def _score(self, query, memory_keys):
        if self.score == "concat":
            hidden = ops.tanh(self.query_dense(query)[:, None, :] + memory_keys)
            scores = ops.einsum("bsu,u->bs", hidden, ops.cast(self.attention_v, hidden.dtype))
        else:
            scores = ops.einsum("bd,bsd->bs", query, ops.cast(memory_keys, query.dtype))
        if self.scale:
            scores = scores * ops.cast(self.attention_g, scores.dtype)
        return scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "score": self.score,
                "scale": self.scale,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


def _flat_state_size(cell):
    state_size = cell.state_size
    if isinstance(state_size, (list, tuple)):
        return [int(size) for size in state_size]
    return [int(state_size)]


def _cell_output_size(cell):
    output_size = getattr(cell, "output_size", None)
    if output_size is None:
        output_size = _flat_state_size(cell)[0]
    return int(output_size)


@keras.saving.register_keras_serializable(package="rnn_suite")
class AttentionDecoderCell(keras.layers.Layer):
    """Recurrent cell with attention over an encoder memory and Luong input feeding.

    One step, for input x_t and wrapped-cell state s_{t-1} (Luong, Pham and Manning
    2015, section 3.3 "Input-feeding"):

        h_t, s_t = cell([x_t; a_{t-1}], s_{t-1})          (input feeding)
        c_t, alpha_t = attention(h_t, memory)
        a_t = tanh(W_c [c_t; h_t])                         (attentional vector)

    and the cell outputs a_t (or h_t with `output_attention=False`). Without
    `attention_layer_units`, a_t = c_t. With `input_feeding=False` the cell sees x_t only.

    The wrapped cell is any object with the Keras cell API (`call(inputs, states,
    training) -> (output, new_states)`, `state_size`), e.g. `keras.layers.LSTMCell` or a
    cell of this package. The state is a flat list: the wrapped cell's states, then
    a_{t-1}, then (with `alignments_in_state=True`) alpha_{t-1} [B, S], which beam search
    then reorders together with the hypotheses, for plots of the chosen beams.

    Keras 3's `RNN` has no `constants`, so the memory is passed to every call:
    `cell(x_t, states, memory=memory, memory_mask=mask, memory_keys=keys)` with
    `keys = cell.attention.setup_memory(memory)` computed once. `AttentionDecoder` does
    this over a whole sequence; for step-by-step decoding, close over the memory in the
    `step_fn` given to `layers.decoding` (tile it with `tile_to_beam` for beam search).

    Args:
        cell: the wrapped recurrent cell.
        attention: a `BahdanauAttention` or `LuongAttention` layer.
        attention_layer_units: int or `None`, size of a_t (W_c). `None` uses a_t = c_t.
        input_feeding: bool, concatenate a_{t-1} to the input. Defaults to `True`.
        output_attention: bool, output a_t (Luong) rather than h_t. Defaults to `True`.
        alignments_in_state: bool, keep alpha_t in the state. Defaults to `False`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: float tensor [B, E], the step input.
        states: list of state tensors, as from `get_initial_state`.
        training: bool, passed to the wrapped cell.
        memory: float tensor [B, S, Hm], required.
        memory_mask: optional bool tensor [B, S].
        memory_keys: optional `attention.setup_memory(memory)`.

    Returns:
        `(output, new_states)`.

    Example:
    >>> cell = AttentionDecoderCell(
    ...     keras.layers.LSTMCell(8), LuongAttention(8), attention_layer_units=8)
    >>> memory = keras.random.normal((2, 5, 6))
    >>> states = cell.get_initial_state(batch_size=2)
    >>> output, states = cell(keras.random.normal((2, 3)), states, memory=memory)
    """

    def __init__(
        self,
        cell,
        attention,
        attention_layer_units: int | None = None,
        input_feeding: bool = True,
        output_attention: bool = True,
        alignments_in_state: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cell = cell
        self.attention = attention
        self.attention_layer_units = (
            None if attention_layer_units is None else int(attention_layer_units)
        )
        self.input_feeding = input_feeding
        self.output_attention = output_attention
        self.alignments_in_state = alignments_in_state
        self.attention_dense = None
        if self.attention_layer_units is not None:
            self.attention_dense = keras.layers.Dense(
                self.attention_layer_units,
                use_bias=False,
                activation="tanh",
                dtype=self.dtype_policy,
                name="attention_dense",
            )
        self._memory_size = None

    @property
    def num_cell_states(self) -> int:
        return len(_flat_state_size(self.cell))

    @property
    def attention_size(self) -> int | None:
        if self.attention_layer_units is not None:
            return self.attention_layer_units
        return self._memory_size

    @property
    def state_size(self):
        return _flat_state_size(self.cell) + [self.attention_size]

    @property
    def output_size(self):
        if self.output_attention:
            return self.attention_size
        return _cell_output_size(self.cell)

    def build(self, inputs_shape, memory_shape):
        self._memory_size = int(memory_shape[-1])
        input_size = inputs_shape[-1] + (self.attention_size if self.input_feeding else 0)
        if not self.cell.built:
            self.cell.build((inputs_shape[0], input_size))
        query_size = _cell_output_size(self.cell)
        if not self.attention.built:
            self.attention.build((inputs_shape[0], query_size), tuple(memory_shape))
        if self.attention_dense is not None and not self.attention_dense.built:
            self.attention_dense.build((inputs_shape[0], self._memory_size + query_size))

    def get_initial_state(self, batch_size=None, memory_length=None):
        """Zero attentional vector after the wrapped cell's initial state.

        `memory_length` (S) is needed only with `alignments_in_state=True`.
        """
        if self.attention_size is None:
            raise ValueError(
                "AttentionDecoderCell needs `attention_layer_units`, or to be built (its "
                "attentional vector has the memory size), before `get_initial_state`."
            )
        if hasattr(self.cell, "get_initial_state"):
            cell_states = self.cell.get_initial_state(batch_size=batch_size)
            if not isinstance(cell_states, (list, tuple)):
                cell_states = [cell_states]
        else:
            cell_states = [
                ops.zeros((batch_size, size), dtype=self.compute_dtype)
                for size in _flat_state_size(self.cell)
            ]
        states = list(cell_states)
        states.append(ops.zeros((batch_size, self.attention_size), dtype=self.compute_dtype))
        if self.alignments_in_state:
            if memory_length is None:
                raise ValueError("`alignments_in_state=True` needs `memory_length`.")
            states.append(ops.zeros((batch_size, memory_length), dtype=self.compute_dtype))
        return states

    def step(self, inputs, states, memory, memory_mask=None, memory_keys=None, training=None):
        """One step returning `(output, new_states, alignments)`."""
        states = list(states)
        num_cell_states = self.num_cell_states
        cell_states = states[:num_cell_states]
        previous_attention = states[num_cell_states]
        cell_inputs = inputs
        if self.input_feeding:
            cell_inputs = ops.concatenate(
                [inputs, ops.cast(previous_attention, inputs.dtype)], axis=-1
            )
        cell_output, new_cell_states = self.cell(cell_inputs, cell_states, training=training)
        if not isinstance(new_cell_states, (list, tuple)):
            new_cell_states = [new_cell_states]
        context, alignments = self.attention(
            cell_output, memory, memory_mask=memory_mask, memory_keys=memory_keys
        )
        if self.attention_dense is not None:
            attention_vector = self.attention_dense(
                ops.concatenate([context, ops.cast(cell_output, context.dtype)], axis=-1)
            )
        else:
            attention_vector = context
        output = attention_vector if self.output_attention else cell_output
        new_states = list(new_cell_states) + [attention_vector]
        if self.alignments_in_state:
            new_states.append(alignments)
        return output, new_states, alignments

    def call(self, inputs, states, training=None, memory=None, memory_mask=None, memory_keys=None):
        if memory is None:
            raise ValueError(
                "AttentionDecoderCell needs the encoder memory: call it as "
                "`cell(inputs, states, memory=memory, memory_mask=mask)`."
            )
        output, new_states, _ = self.step(
            inputs, states, memory, memory_mask, memory_keys, training=training
        )
        return output, new_states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": keras.saving.serialize_keras_object(self.cell),
                "attention": keras.saving.serialize_keras_object(self.attention),
                "attention_layer_units": self.attention_layer_units,
                "input_feeding": self.input_feeding,
                "output_attention": self.output_attention,
                "alignments_in_state": self.alignments_in_state,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        config["attention"] = keras.saving.deserialize_keras_object(config["attention"])
        return cls(**config)


def _reset_dropout_masks(cell):
    for method in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
        if hasattr(cell, method):
            getattr(cell, method)()


@keras.saving.register_keras_serializable(package="rnn_suite")
class AttentionDecoder(keras.layers.Layer):
    """Runs an `AttentionDecoderCell` over a target sequence (teacher forcing).

    Projects the memory once (`attention.setup_memory`), then steps the cell over the
    target inputs, returning every step's output and alignments alpha_t, the alignment
    history [B, T, S] that attention heatmaps plot.

    Args:
        cell: an `AttentionDecoderCell`.
        return_alignments: bool, also return the alignment history. Defaults to `True`.
        return_state: bool, also return the final state list. Defaults to `False`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: float tensor [B, T, E] (embedded target inputs).
        memory: float tensor [B, S, Hm] (encoder outputs).
        inputs_mask: optional bool tensor [B, T], right-padded; taken from the Keras mask
            of `inputs`. Padded steps keep the state and output zeros.
        memory_mask: optional bool tensor [B, S]; taken from the Keras mask of `memory`.
        initial_state: optional list, the wrapped cell's states (e.g. the encoder's final
            states) or the full cell state list; zeros when omitted.
        training: bool.

    Returns:
        `outputs [B, T, A]`, then `alignments [B, T, S]` if `return_alignments`, then the
        final states if `return_state` (a tuple when more than one). `outputs` carries the
        target mask.

    Example:
    >>> cell = AttentionDecoderCell(
    ...     keras.layers.LSTMCell(8), BahdanauAttention(8), attention_layer_units=8)
    >>> decoder = AttentionDecoder(cell)
    >>> outputs, alignments = decoder(
    ...     keras.random.normal((2, 4, 3)), keras.random.normal((2, 5, 6)))
    >>> tuple(outputs.shape), tuple(alignments.shape)
    ((2, 4, 8), (2, 4, 5))
    """

    def __init__(
        self,
        cell: AttentionDecoderCell,
        return_alignments: bool = True,
        return_state: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cell = cell
        self.return_alignments = return_alignments
        self.return_state = return_state
        self.supports_masking = True

    def build(self, inputs_shape, memory_shape):
        if not self.cell.built:
            self.cell.build((inputs_shape[0], inputs_shape[-1]), tuple(memory_shape))

    def call(
        self,
        inputs,
        memory,
        inputs_mask=None,
        memory_mask=None,
        initial_state=None,
        training=None,
    ):
        batch_size = ops.shape(inputs)[0]
        memory_length = ops.shape(memory)[1]
        memory_keys = self.cell.attention.setup_memory(memory)
        num_cell_states = self.cell.num_cell_states
        default_state = self.cell.get_initial_state(
            batch_size=batch_size, memory_length=memory_length
        )
        if initial_state is None:
            states = default_state
        else:
            states = list(initial_state) + default_state[len(initial_state) :]
            if len(initial_state) not in (num_cell_states, len(default_state)):
                raise ValueError(
                    f"`initial_state` must hold the wrapped cell's {num_cell_states} state "
                    f"tensors or all {len(default_state)} decoder states; got "
                    f"{len(initial_state)}."
                )
        if inputs_mask is None:
            float_mask = ops.ones(ops.shape(inputs)[:2], dtype=inputs.dtype)
        else:
            float_mask = ops.cast(inputs_mask, inputs.dtype)
        # One time-major tensor [T, B, E + 1] of inputs and mask: `keras.ops.scan` on the
        # TensorFlow backend (Keras 3.15) fails on several sequences of unknown length.
        steps = ops.transpose(ops.concatenate([inputs, float_mask[..., None]], -1), (1, 0, 2))
        inputs_tm = steps[:, :, :-1]

        # Like keras.layers.RNN: a dropout cell's per-sequence masks are made once, before
        # the loop (a mask made inside the loop body could not be reused outside it), and
        # forgotten after it, so the next sequence draws new ones.
        wrapped = self.cell.cell
        if training:
            first_input = inputs_tm[0]
            if self.cell.input_feeding:
                previous_attention = ops.cast(states[num_cell_states], inputs.dtype)
                first_input = ops.concatenate([first_input, previous_attention], axis=-1)
            if hasattr(wrapped, "get_dropout_mask"):
                wrapped.get_dropout_mask(first_input)
            if hasattr(wrapped, "get_recurrent_dropout_mask"):
                wrapped.get_recurrent_dropout_mask(states[0])

        initial_output = ops.zeros((batch_size, self.cell.output_size), dtype=self.compute_dtype)
        initial_alignments = ops.zeros((batch_size, memory_length), dtype=self.compute_dtype)

        def step(carry, step_inputs):
            step_states, _, _ = carry
            x_t, valid = step_inputs[:, :-1], step_inputs[:, -1] > 0.5
            output, new_states, alignments = self.cell.step(
                x_t, step_states, memory, memory_mask, memory_keys, training=training
            )
            keep = valid[:, None]
            new_states = [
                ops.where(keep, new, ops.cast(old, new.dtype))
                for new, old in zip(new_states, step_states, strict=True)
            ]
            output = ops.where(keep, output, ops.zeros_like(output))
            alignments = ops.where(keep, alignments, ops.zeros_like(alignments))
            new_carry = (new_states, output, alignments)
            # Keras' scan (TF backend) needs per-step outputs shaped like the carry.
            return new_carry, new_carry

        (final_states, _, _), (_, outputs_tm, alignments_tm) = ops.scan(
            step, (states, initial_output, initial_alignments), steps
        )
        if training:
            _reset_dropout_masks(wrapped)
        outputs = ops.transpose(outputs_tm, (1, 0, 2))
        results = [outputs]
        if self.return_alignments:
            results.append(ops.transpose(alignments_tm, (1, 0, 2)))
        if self.return_state:
            results.extend(final_states)
        return results[0] if len(results) == 1 else tuple(results)

    def compute_mask(self, inputs, previous_mask=None):
        count = 1 + int(self.return_alignments)
        if self.return_state:
            count += len(self.cell.state_size) + int(self.cell.alignments_in_state)
        if count == 1:
            return previous_mask
        return [previous_mask] + [None] * (count - 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": keras.saving.serialize_keras_object(self.cell),
                "return_alignments": self.return_alignments,
                "return_state": self.return_state,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)
