"""The captioning model: a CNN encoder and a recurrent decoder with any cell of the suite.

    encoder    pixels -> (grid [h, w, C], vector [D])            (`apps.captioning.encoders`)
    show_tell  the image vector v sets the initial state, s_0 = tanh(W_s v) per state
               (`init_state`, the lecture's), or is the input before <start>:
               s_0 = cell(W_e v, 0) (`first_input`, Vinyals et al. 2015, Show and Tell);
               h_t, s_t = cell(E y_{t-1}, s_{t-1}),  p(y_t) = softmax(W_o h_t + b_o)
    attention  Show-Attend-Tell (Xu et al. 2015), over the L = h w grid cells a_i:
               h_0, c_0 = tanh(W_init mean_i a_i),
               z_t, alpha_t = attention(h_{t-1}, a)        (`layers.attention.BahdanauAttention`)
               beta_t = sigmoid(W_b h_{t-1})               (the gating scalar)
               h_t, s_t = cell([E y_{t-1}; beta_t z_t], s_{t-1})
               p(y_t) = softmax(W_o (E y_{t-1} + L_h h_t + L_z z_t) + b_o)   (deep output)
               with the doubly stochastic penalty lambda sum_i (1 - sum_t alpha_ti)^2,
               summed over captions and divided by their tokens (the ratio of Xu et al.'s
               penalty to their summed negative log-likelihood).

Training feeds the reference words (teacher forcing) or, with scheduled sampling (Bengio
et al. 2015, `layers.scheduled_sampling`), the model's own previous prediction with
probability 1 - eps_i. The model reads pixels (`{"image": uint8 [B, S, S, 3]}`) or, with a
frozen encoder, its cached output (`{"features": grid or vector}`), plus
`"caption_in"` (`<start>` + caption ids, 0-padded), and returns logits `[B, T, V]`.
"""

from __future__ import annotations

import keras
from keras import ops

import layers
from apps.captioning.encoders import build_encoder
from apps.common.optimizer import make_optimizer
from layers.attention import BahdanauAttention
from layers.input_projection import InputProjectionCell, needs_input_projection
from layers.scheduled_sampling import (
    ScheduledSamplingSettings,
    scheduled_sampling_arguments,
    unroll_with_scheduled_sampling,
)
from pipelines.tokenizers import PAD_ID

PACKAGE = "captioning"


def _state_sizes(cell) -> list[int]:
    sizes = cell.state_size
    return [int(size) for size in (sizes if isinstance(sizes, (list, tuple)) else [sizes])]


@keras.saving.register_keras_serializable(package=PACKAGE)
class CaptionModel(ScheduledSamplingSettings, keras.Model):
    """CNN encoder + recurrent decoder (see the module docstring).

    Args:
        vocab_size: caption ids (0 padding, 1 unknown, 2 <start>, 3 <end>, then tokens).
        image_size, encoder, small_cnn_filters: the encoder (`build_encoder`); its weights
            come from the checkpoint (`encoder_weights` only initialises a new model).
        frozen_encoder: keep the encoder's weights fixed.
        decoder: "show_tell" or "attention".
        image_injection: show_tell: "init_state" or "first_input".
        cell, units: the decoder cell (`layers.CELL_NAMES`).
        embedding_size, attention_units, dropout: widths and the dropout rate (on the
            word embeddings and the output layer's input).
        attention_regularization: lambda of the doubly stochastic penalty.
        scheduled_sampling_*: as in `apps.captioning.config`.
    """

    def __init__(
        self,
        vocab_size: int,
        image_size: int = 64,
        encoder: str = "small_cnn",
        small_cnn_filters: int = 32,
        frozen_encoder: bool = False,
        decoder: str = "attention",
        image_injection: str = "init_state",
        cell: str = "lstm",
        units: int = 256,
        embedding_size: int = 128,
        attention_units: int = 128,
        dropout: float = 0.3,
        attention_regularization: float = 1.0,
        scheduled_sampling_type: str = "",
        scheduled_sampling_k: float = 1.0,
        scheduled_sampling_c: float = 0.0,
        scheduled_sampling_min_probability: float = 0.0,
        scheduled_sampling_prediction: str = "sample",
        encoder_weights: str = "none",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if decoder not in ("show_tell", "attention"):
            raise ValueError(f"--decoder must be show_tell or attention, got {decoder!r}")
        if image_injection not in ("init_state", "first_input"):
            raise ValueError(f"--image-injection must be init_state or first_input, got {image_injection!r}")
        self.vocab_size = int(vocab_size)
        self.image_size = int(image_size)
        self.encoder_name = encoder
        self.small_cnn_filters = int(small_cnn_filters)
        self.frozen_encoder = bool(frozen_encoder)
        self.decoder = decoder
        self.image_injection = image_injection
        self.cell_name = cell
        self.units = int(units)
        self.embedding_size = int(embedding_size)
        self.attention_units = int(attention_units)
        self.dropout = float(dropout)
        self.attention_regularization = float(attention_regularization)
        self.set_scheduled_sampling(
            scheduled_sampling_type, scheduled_sampling_k, scheduled_sampling_c,
            scheduled_sampling_min_probability, scheduled_sampling_prediction,
        )

        self.encoder = build_encoder(encoder, self.image_size, self.small_cnn_filters, encoder_weights)
        self.encoder.trainable = not self.frozen_encoder
        grid_shape, vector_shape = (tuple(output.shape) for output in self.encoder.outputs)
        self.grid_cells = int(grid_shape[1]) * int(grid_shape[2])
        self.grid_features = int(grid_shape[-1])
        self.vector_features = int(vector_shape[-1])

        attending = decoder == "attention"
        input_size = self.embedding_size + (self.grid_features if attending else 0)
        wrapped = layers.build_cell(cell, self.units)
        self.cell = InputProjectionCell(wrapped) if needs_input_projection(wrapped, input_size) else wrapped
        self.num_cell_states = len(_state_sizes(self.cell))
        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_size, name="embedding")
        self.embedding_dropout = keras.layers.Dropout(self.dropout)
        self.output_dropout = keras.layers.Dropout(self.dropout)
        self.output_projection = keras.layers.Dense(self.vocab_size, name="output_projection")
        self.init_states = [
            keras.layers.Dense(size, activation="tanh", name=f"init_state_{index}")
            for index, size in enumerate(_state_sizes(self.cell))
        ]
        if attending:
            self.init_query = keras.layers.Dense(self.cell_output_size, activation="tanh", name="init_query")
            self.attention = BahdanauAttention(self.attention_units, name="attention")
            self.gate = keras.layers.Dense(1, activation="sigmoid", name="gate")
            self.deep_hidden = keras.layers.Dense(self.embedding_size, use_bias=False, name="deep_hidden")
            self.deep_context = keras.layers.Dense(self.embedding_size, use_bias=False, name="deep_context")
        else:
            # The pooled ReLU features are large (tens) and alike in scale across images: fed
            # as they are, the tanh initial states (or the first input's gates) saturate and
            # the decoder never sees the image. Layer normalisation gives them unit scale.
            self.image_norm = keras.layers.LayerNormalization(name="image_norm")
            if image_injection == "first_input":
                self.image_embedding = keras.layers.Dense(self.embedding_size, name="image_embedding")
        self.sampling_seed = keras.random.SeedGenerator(1337)

    @property
    def cell_output_size(self) -> int:
        return int(getattr(self.cell, "output_size", None) or _state_sizes(self.cell)[0])

    @property
    def feature_kind(self) -> str:
        """What a frozen encoder's cache holds for this decoder: "grid" or "vector"."""
        return "grid" if self.decoder == "attention" else "vector"

    def build(self, input_shape=None):
        self.embedding.build((None, None))
        if self.decoder == "attention":
            self.cell.build((None, self.embedding_size + self.grid_features))
            for dense in (*self.init_states, self.init_query):
                dense.build((None, self.grid_features))
            self.attention.build((None, self.cell_output_size), (None, self.grid_cells, self.grid_features))
            self.gate.build((None, self.cell_output_size))
            self.deep_hidden.build((None, self.cell_output_size))
            self.deep_context.build((None, self.grid_features))
            self.output_projection.build((None, self.embedding_size))
        else:
            self.cell.build((None, self.embedding_size))
            self.image_norm.build((None, self.vector_features))
            if self.image_injection == "first_input":
                self.image_embedding.build((None, self.vector_features))
            else:
                for dense in self.init_states:
                    dense.build((None, self.vector_features))
            self.output_projection.build((None, self.cell_output_size))
        self.built = True

    # ------------------------------------------------------------------ encoder
    def encode(self, images, training=False):
        """Pixels -> what the decoder reads: the grid `[B, h, w, C]` (attention) or the
        image vector `[B, D]` (show_tell)."""
        # Batch normalisation of the backbones always runs on its moving statistics: training
        # batches, bucketed by caption length, are not samples of the images at large.
        grid, vector = self.encoder(images, training=False)
        return grid if self.decoder == "attention" else vector

    # ------------------------------------------------------------------ decoder
    def start(self, encoded, steps=None):
        """`(memory [B, L, C] or None, memory keys or None, initial states)` of the
        decoder for encoder outputs `encoded`; `steps` [B] counts the steps whose attention
        enters the coverage penalty (default: all)."""
        encoded = ops.cast(encoded, self.compute_dtype)
        if self.decoder == "show_tell":
            encoded = self.image_norm(encoded)
            if self.image_injection == "init_state":
                return None, None, [dense(encoded) for dense in self.init_states]
            zeros = self.cell.get_initial_state(batch_size=ops.shape(encoded)[0])
            _, states = self.cell(self.image_embedding(encoded), list(zeros))
            return None, None, list(states) if isinstance(states, (list, tuple)) else [states]
        batch = ops.shape(encoded)[0]
        memory = ops.reshape(encoded, (batch, self.grid_cells, self.grid_features))
        mean = ops.mean(memory, axis=1)
        if steps is None:
            steps = ops.full((batch,), 1e9, dtype="float32")
        states = [dense(mean) for dense in self.init_states] + [
            self.init_query(mean),
            ops.zeros((batch, self.grid_cells), dtype=self.compute_dtype),  # coverage
            ops.cast(steps, "float32"),
        ]
        return memory, self.attention.setup_memory(memory), states

    def step(self, token_ids, states, memory=None, memory_keys=None, training=False):
        """One step: `(logits [B, V], new states, alignments [B, L] or None)`."""
        embedded = self.embedding(ops.cast(token_ids, "int32"))
        dropped = self.embedding_dropout(embedded, training=training)
        states = list(states)
        if self.decoder == "show_tell":
            output, new_states = self.cell(dropped, states, training=training)
            logits = self.output_projection(self.output_dropout(output, training=training))
            return logits, list(new_states), None
        count = self.num_cell_states
        cell_states, query, coverage, steps_left = states[:count], states[count], states[count + 1], states[count + 2]
        context, alignments = self.attention(query, memory, memory_keys=memory_keys)
        gated = self.gate(query) * context
        output, new_cell_states = self.cell(ops.concatenate([dropped, gated], axis=-1), cell_states, training=training)
        deep = embedded + self.deep_hidden(output) + self.deep_context(context)
        logits = self.output_projection(self.output_dropout(deep, training=training))
        counted = ops.cast(steps_left > 0, alignments.dtype)[:, None]
        new_states = list(new_cell_states) + [output, coverage + alignments * counted, steps_left - 1.0]
        return logits, new_states, alignments

    def unroll(self, encoded, caption_in, read_probability=1.0, training=False):
        """Logits `[B, T, V]` of `caption_in` (reading the reference words with
        probability `read_probability`, else the previous prediction), and the final
        decoder states."""
        caption_in = ops.cast(caption_in, "int32")
        lengths = ops.sum(ops.cast(ops.not_equal(caption_in, PAD_ID), "float32"), axis=1)
        memory, keys, states = self.start(encoded, lengths)

        def step_fn(token_ids, step_states):
            logits, new_states, _ = self.step(token_ids, step_states, memory, keys, training)
            return logits, new_states

        sampling = self.scheduled_sampling_type and training
        logits, _, final_states = unroll_with_scheduled_sampling(
            step_fn, states, caption_in, read_probability, seed=self.sampling_seed,
            prediction=self.scheduled_sampling_prediction if sampling else "argmax",
            return_state=True,
        )
        return logits, final_states

    def call(self, inputs, training=False):
        if "features" in inputs:
            encoded = inputs["features"]
        else:
            encoded = self.encode(inputs["image"], training=training)
        caption_in = inputs["caption_in"]
        probability = self.read_probability() if training and self.scheduled_sampling_type else 1.0
        logits, final_states = self.unroll(encoded, caption_in, probability, training=training)
        if training and self.decoder == "attention" and self.attention_regularization > 0:
            coverage = final_states[self.num_cell_states + 1]
            tokens = ops.maximum(ops.sum(ops.cast(ops.not_equal(caption_in, PAD_ID), "float32")), 1.0)
            penalty = ops.sum(ops.square(1.0 - ops.cast(coverage, "float32"))) / tokens
            self.add_loss(self.attention_regularization * penalty)
        return logits

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, image_size=self.image_size, encoder=self.encoder_name,
            small_cnn_filters=self.small_cnn_filters, frozen_encoder=self.frozen_encoder,
            decoder=self.decoder, image_injection=self.image_injection, cell=self.cell_name,
            units=self.units, embedding_size=self.embedding_size,
            attention_units=self.attention_units, dropout=self.dropout,
            attention_regularization=self.attention_regularization,
            **scheduled_sampling_arguments(self),
        )
        return config


def build_model(config, vocab_size: int, frozen_encoder: bool | None = None,
                learning_rate: float | None = None, encoder_weights: str | None = None) -> CaptionModel:
    """The model of `config`, built and compiled (masked cross-entropy, token accuracy)."""
    model = CaptionModel(
        vocab_size,
        image_size=config.image_size,
        encoder=config.encoder,
        small_cnn_filters=config.small_cnn_filters,
        frozen_encoder=config.encoder_frozen() if frozen_encoder is None else frozen_encoder,
        decoder=config.decoder,
        image_injection=config.image_injection,
        cell=config.cell,
        units=config.units,
        embedding_size=config.embedding_size,
        attention_units=config.attention_units,
        dropout=config.dropout,
        attention_regularization=config.attention_regularization,
        **scheduled_sampling_arguments(config),
        encoder_weights=config.encoder_weights if encoder_weights is None else encoder_weights,
        name="captioning",
    )
    model.build()
    compile_model(model, config, learning_rate)
    return model


def compile_model(model: CaptionModel, config, learning_rate: float | None = None) -> None:
    options = config if learning_rate is None else _with_rate(config, learning_rate)
    model.compile(
        optimizer=make_optimizer(options),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def _with_rate(config, learning_rate: float):
    import dataclasses

    return dataclasses.replace(config, learning_rate=learning_rate)
