"""The translation model: a bidirectional recurrent encoder and an attention decoder.

    encoder   x -> Embedding -> [Bidirectional(Recurrent(cell))] x encoder_layers -> memory
    bridge    s_0 = tanh(W mean_s(memory_s) + b)      (one Dense per decoder state)
    decoder   AttentionDecoderCell(cell, attention) with Luong input feeding:
              h_t = cell([E y_{t-1}; a_{t-1}], s_{t-1}),  c_t = attention(h_t, memory),
              a_t = tanh(W_c [c_t; h_t]),  p(y_t | y_<t, x) = softmax(W_o a_t + b_o),
              or with `deep_output` softmax(W_o [a_t; c_t; E y_{t-1}] + b_o)

The deep output's direct paths from the context and the previous word matter in practice:
on Multi30k the a_t-only output sat on the unigram plateau (loss ~5.7) for the first
~1,000 steps, the deep output left it within ~100.

Training feeds the reference target (teacher forcing) or, with scheduled sampling
(Bengio et al. 2015, `layers.scheduled_sampling`), at each step the reference token with
probability eps_i and the model's own previous prediction otherwise, eps_i following the
configured schedule of the optimizer's step i.
"""

from __future__ import annotations

import keras
from keras import ops

import layers
from apps.common.optimizer import make_optimizer
from apps.common.precision import resolve_precision
from apps.translation.config import ATTENTION_TYPES, TranslationConfig
from layers.attention import (
    AttentionDecoder,
    AttentionDecoderCell,
    BahdanauAttention,
    LuongAttention,
)
from layers.input_projection import InputProjectionCell, needs_input_projection
from layers.scheduled_sampling import (
    ScheduledSamplingSettings,
    scheduled_sampling_arguments,
    unroll_with_scheduled_sampling,
)
from pipelines.tokenizers import PAD_ID

PACKAGE = "translation"


def build_attention(kind: str, units: int):
    if kind == "bahdanau":
        return BahdanauAttention(units, name="attention")
    if kind in ("luong_dot", "luong_general", "luong_concat"):
        score = kind.split("_", 1)[1]
        return LuongAttention(
            units if score == "concat" else None, score=score, scale=score == "dot", name="attention"
        )
    raise ValueError(f"--attention must be one of {ATTENTION_TYPES}, got {kind!r}")


def _cell(name: str, units: int, input_dim: int):
    """The named cell; cells that need inputs of their own width (MUT1, MUT2) get a linear
    input projection."""
    cell = layers.build_cell(name, units)
    if needs_input_projection(cell, input_dim):
        cell = InputProjectionCell(cell)
    return cell


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionSeq2Seq(ScheduledSamplingSettings, keras.Model):
    """Encoder-decoder with attention over SentencePiece ids (0 is padding).

    Args:
        source_vocab_size, target_vocab_size: sizes of the two vocabularies.
        embedding_size: width of both embeddings.
        encoder_cell, decoder_cell: names of `layers.CELL_NAMES`.
        encoder_units: units of each encoder direction; the memory is 2 x wide.
        encoder_layers: stacked bidirectional layers.
        decoder_units: units of the decoder cell and of the attentional vector a_t.
        attention: "bahdanau", "luong_dot", "luong_general" or "luong_concat".
        attention_units: hidden size of the additive scores (bahdanau, luong_concat).
        dropout: rate on the embeddings, the memory and a_t.
        deep_output: predict from `[a_t; c_t; E y_{t-1}]` rather than from a_t alone
            (the "deep output" of Bahdanau et al. 2015; the direct paths from the context
            and the previous word shorten the unigram plateau at the start of training).
        scheduled_sampling_type: "" (teacher forcing) or a schedule of
            `layers.scheduled_sampling` ("constant", "linear", "exponential",
            "inverse_sigmoid") with `scheduled_sampling_k`, `scheduled_sampling_c` and
            `scheduled_sampling_min_probability`.
        scheduled_sampling_prediction: "sample" (Bengio et al.) or "argmax": the token
            fed back in place of the reference.

    Call arguments:
        inputs: `{"source": int [B, S], "target_in": int [B, T]}` (`<s>` + target).
        training: bool.

    Returns logits `[B, T, target_vocab_size]` of `target_out` (target + `</s>`).
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        embedding_size: int = 256,
        encoder_cell: str = "gru",
        encoder_units: int = 256,
        encoder_layers: int = 1,
        decoder_cell: str = "gru",
        decoder_units: int = 512,
        attention: str = "bahdanau",
        attention_units: int = 256,
        dropout: float = 0.3,
        deep_output: bool = False,
        scheduled_sampling_type: str = "",
        scheduled_sampling_k: float = 1.0,
        scheduled_sampling_c: float = 0.0,
        scheduled_sampling_min_probability: float = 0.0,
        scheduled_sampling_prediction: str = "sample",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.source_vocab_size = int(source_vocab_size)
        self.target_vocab_size = int(target_vocab_size)
        self.embedding_size = int(embedding_size)
        self.encoder_cell = encoder_cell
        self.encoder_units = int(encoder_units)
        self.encoder_layers = int(encoder_layers)
        self.decoder_cell = decoder_cell
        self.decoder_units = int(decoder_units)
        self.attention = attention
        self.attention_units = int(attention_units)
        self.dropout = float(dropout)
        self.deep_output = bool(deep_output)
        self.set_scheduled_sampling(
            scheduled_sampling_type, scheduled_sampling_k, scheduled_sampling_c,
            scheduled_sampling_min_probability, scheduled_sampling_prediction,
        )

        self.source_embedding = keras.layers.Embedding(
            self.source_vocab_size, self.embedding_size, name="source_embedding"
        )
        self.target_embedding = keras.layers.Embedding(
            self.target_vocab_size, self.embedding_size, name="target_embedding"
        )
        self.encoder = [
            layers.Bidirectional(
                layers.Recurrent(
                    _cell(encoder_cell, self.encoder_units, self.embedding_size if index == 0 else self.memory_size),
                    return_sequences=True,
                ),
                name=f"encoder_{index}",
            )
            for index in range(self.encoder_layers)
        ]
        # Input feeding: the decoder cell reads [E y_{t-1}; a_{t-1}].
        wrapped = _cell(decoder_cell, self.decoder_units, self.embedding_size + self.decoder_units)
        state_sizes = wrapped.state_size if isinstance(wrapped.state_size, (list, tuple)) else [wrapped.state_size]
        self.bridge = [
            keras.layers.Dense(int(size), activation="tanh", name=f"bridge_{index}")
            for index, size in enumerate(state_sizes)
        ]
        self.decoder_step_cell = AttentionDecoderCell(
            wrapped,
            build_attention(attention, self.attention_units),
            attention_layer_units=self.decoder_units,
            name="decoder_cell",
        )
        self.decoder = AttentionDecoder(self.decoder_step_cell, return_alignments=True, name="decoder")
        self.output_projection = keras.layers.Dense(self.target_vocab_size, name="output_projection")
        self.embedding_dropout = keras.layers.Dropout(self.dropout)
        self.memory_dropout = keras.layers.Dropout(self.dropout)
        self.output_dropout = keras.layers.Dropout(self.dropout)
        self.sampling_seed = keras.random.SeedGenerator(1337)

    # ------------------------------------------------------------------ building
    @property
    def memory_size(self) -> int:
        return 2 * self.encoder_units

    def build(self, input_shape=None):
        embedded = (None, None, self.embedding_size)
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        features = embedded
        for layer in self.encoder:
            layer.build(features)
            features = (None, None, self.memory_size)
        for dense in self.bridge:
            dense.build((None, self.memory_size))
        self.decoder.build(embedded, (None, None, self.memory_size))
        self.output_projection.build((None, self.output_features))
        self.built = True

    # ------------------------------------------------------------------ encoder
    def encode(self, source, training=False):
        """Returns `(memory [B, S, 2U], memory_mask [B, S], initial cell states)`."""
        source = ops.cast(source, "int32")
        mask = ops.not_equal(source, PAD_ID)
        features = self.embedding_dropout(self.source_embedding(source), training=training)
        for layer in self.encoder:
            features = layer(features, mask=mask, training=training)
        memory = self.memory_dropout(features, training=training)
        weights = ops.cast(mask, memory.dtype)[:, :, None]
        pooled = ops.sum(memory * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        states = [dense(pooled) for dense in self.bridge]
        return memory, mask, states

    def initial_decoder_state(self, cell_states, memory):
        """The full `AttentionDecoderCell` state list from the bridge's cell states."""
        batch_size = ops.shape(memory)[0]
        default = self.decoder_step_cell.get_initial_state(
            batch_size=batch_size, memory_length=ops.shape(memory)[1]
        )
        return list(cell_states) + default[len(cell_states) :]

    # ------------------------------------------------------------------ decoder
    @property
    def output_features(self) -> int:
        if self.deep_output:
            return self.decoder_units + self.memory_size + self.embedding_size
        return self.decoder_units

    def project(self, outputs, embedded, alignments, memory, training=False):
        """Logits from the decoder outputs; with `deep_output`, from
        `[a_t; c_t; E y_{t-1}]` (c_t = sum_s alignments_s memory_s), one step `[B, ...]`
        or all steps `[B, T, ...]`."""
        if self.deep_output:
            memory = ops.cast(memory, alignments.dtype)
            if len(alignments.shape) == 2:
                context = ops.einsum("bs,bsd->bd", alignments, memory)
            else:
                context = ops.einsum("bts,bsd->btd", alignments, memory)
            outputs = ops.concatenate(
                [outputs, ops.cast(context, outputs.dtype), ops.cast(embedded, outputs.dtype)], axis=-1
            )
        return self.output_projection(self.output_dropout(outputs, training=training))

    def decode_step(self, token_ids, states, memory, memory_mask, memory_keys=None):
        """One inference step: `(logits [B, V], new_states, alignments [B, S])`."""
        embedded = self.target_embedding(ops.cast(token_ids, "int32"))
        output, states, alignments = self.decoder_step_cell.step(
            embedded, states, memory, memory_mask, memory_keys, training=False
        )
        return self.project(output, embedded, alignments, memory), states, alignments

    def teacher_forced(self, source, target_in, training=False):
        """Logits `[B, T, V]` and alignments `[B, T, S]` given the reference prefix."""
        memory, memory_mask, cell_states = self.encode(source, training=training)
        target_in = ops.cast(target_in, "int32")
        embedded = self.embedding_dropout(self.target_embedding(target_in), training=training)
        outputs, alignments = self.decoder(
            embedded,
            memory,
            inputs_mask=ops.not_equal(target_in, PAD_ID),
            memory_mask=memory_mask,
            initial_state=cell_states,
            training=training,
        )
        return self.project(outputs, embedded, alignments, memory, training=training), alignments

    def scheduled_sampling_logits(self, source, target_in, read_probability, training=True):
        """Logits `[B, T, V]` where step t reads the reference token with probability
        `read_probability`, else the model's prediction of step t - 1 (step 0 reads <s>)."""
        memory, memory_mask, cell_states = self.encode(source, training=training)
        states = self.initial_decoder_state(cell_states, memory)
        memory_keys = self.decoder_step_cell.attention.setup_memory(memory)

        def step_fn(token_ids, step_states):
            embedded = self.embedding_dropout(self.target_embedding(token_ids), training=training)
            output, new_states, alignments = self.decoder_step_cell.step(
                embedded, step_states, memory, memory_mask, memory_keys, training=training
            )
            logits = self.project(output, embedded, alignments, memory, training=training)
            return logits, new_states

        logits, _ = unroll_with_scheduled_sampling(
            step_fn,
            states,
            target_in,
            read_probability,
            seed=self.sampling_seed,
            prediction=self.scheduled_sampling_prediction,
        )
        return logits

    def call(self, inputs, training=False):
        source, target_in = inputs["source"], inputs["target_in"]
        if training and self.scheduled_sampling_type:
            return self.scheduled_sampling_logits(
                source, target_in, self.read_probability(), training=True
            )
        logits, _ = self.teacher_forced(source, target_in, training=training)
        return logits

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocab_size=self.source_vocab_size,
            target_vocab_size=self.target_vocab_size,
            embedding_size=self.embedding_size,
            encoder_cell=self.encoder_cell,
            encoder_units=self.encoder_units,
            encoder_layers=self.encoder_layers,
            decoder_cell=self.decoder_cell,
            decoder_units=self.decoder_units,
            attention=self.attention,
            attention_units=self.attention_units,
            dropout=self.dropout,
            deep_output=self.deep_output,
            **scheduled_sampling_arguments(self),
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class LabelSmoothedCrossEntropy(keras.losses.Loss):
    """Cross-entropy of logits against integer targets with label smoothing:
    (1 - e) * (-log p_y) + e * mean_v(-log p_v) (Szegedy et al. 2016), averaged over the
    tokens whose sample weight is non-zero (padding has weight 0)."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "label_smoothed_cross_entropy", **kwargs):
        kwargs.setdefault("reduction", "mean_with_sample_weight")
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        # With log p_v = z_v - logsumexp(z):  (1 - e) (-log p_y) + e mean_v(-log p_v)
        #   = logsumexp(z) - (1 - e) z_y - e mean_v(z),  without materialising log p.
        logits = ops.cast(y_pred, "float32")
        labels = ops.cast(y_true, "int32")
        true_logit = ops.squeeze(ops.take_along_axis(logits, labels[..., None], axis=-1), -1)
        loss = ops.logsumexp(logits, axis=-1) - (1.0 - self.label_smoothing) * true_logit
        if self.label_smoothing > 0.0:
            loss = loss - self.label_smoothing * ops.mean(logits, axis=-1)
        return loss

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def build_model(config: TranslationConfig, source_vocab_size: int, target_vocab_size: int) -> AttentionSeq2Seq:
    """The model of `config`, built and compiled (its layers take the `mixed_precision`
    policy; the process-wide policy is restored afterwards)."""
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(resolve_precision(config.mixed_precision))
    try:
        model = _build(config, source_vocab_size, target_vocab_size)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    model.compile(
        optimizer=make_optimizer(config),
        loss=LabelSmoothedCrossEntropy(config.label_smoothing),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def _build(config: TranslationConfig, source_vocab_size: int, target_vocab_size: int) -> AttentionSeq2Seq:
    model = AttentionSeq2Seq(
        source_vocab_size,
        target_vocab_size,
        embedding_size=config.embedding_size,
        encoder_cell=config.encoder_cell,
        encoder_units=config.encoder_units,
        encoder_layers=config.encoder_layers,
        decoder_cell=config.decoder_cell,
        decoder_units=config.decoder_units,
        attention=config.attention,
        attention_units=config.attention_units,
        dropout=config.dropout,
        deep_output=config.deep_output,
        **scheduled_sampling_arguments(config),
        name="translation",
    )
    model.build()
    return model
