"""The tagger: word embeddings + character features -> stacked bidirectional recurrent
layers -> unary potentials -> softmax or linear-chain CRF (Lample et al. 2016; Ma & Hovy
2016)."""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf
from keras import ops

import layers
from apps.common.checkpoints import load_model_file
from apps.common.optimizer import make_optimizer
from apps.tagging.config import TaggingConfig
from apps.tagging.data import CASINGS, Vocabularies
from layers.crf import CRF, CRFTagger, crf_posterior_decode, crf_viterbi_decode


@keras.saving.register_keras_serializable(package="tagging")
class CharacterEncoder(keras.layers.Layer):
    """One feature vector per word from its characters.

    Characters are embedded, then either read by a bidirectional recurrent layer whose two
    final states are concatenated (Lample et al. 2016) or convolved and max-pooled over the
    word (Ma & Hovy 2016). Padding characters (id 0) are masked; padding words (no
    characters) get zeros. Each distinct word of a batch is read once (about 12 % faster
    training of the UPOS tagger).

    Args:
        vocabulary_size: character ids are in [0, vocabulary_size); 0 is padding.
        embedding_size: character embedding width.
        encoder: "lstm" (bidirectional recurrent layer of `cell`) or "cnn".
        units: recurrent units per direction, or convolution filters.
        kernel_size: convolution width (cnn).
        cell: cell name for the recurrent encoder (`layers.CELL_NAMES`).

    Call arguments:
        char_ids: int tensor [batch, words, chars].

    Returns:
        float tensor [batch, words, output_size] (output_size = 2 * units for lstm, units
        for cnn).
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_size: int = 25,
        encoder: str = "lstm",
        units: int = 25,
        kernel_size: int = 3,
        cell: str = "lstm",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if encoder not in ("lstm", "cnn"):
            raise ValueError(f"encoder must be 'lstm' or 'cnn'; got {encoder!r}")
        self.vocabulary_size = vocabulary_size
        self.embedding_size = embedding_size
        self.encoder = encoder
        self.units = units
        self.kernel_size = kernel_size
        self.cell = cell
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_size, name="char_embedding")
        if encoder == "lstm":
            self.reader = layers.Bidirectional(
                layers.Recurrent(layers.build_cell(cell, units)), name="char_birnn"
            )
        else:
            self.reader = keras.layers.Conv1D(
                units, kernel_size, padding="same", activation="tanh", name="char_cnn"
            )

    @property
    def output_size(self) -> int:
        return 2 * self.units if self.encoder == "lstm" else self.units

    def build(self, input_shape):
        self.embedding.build((None, None))
        if self.encoder == "lstm":
            self.reader.build((None, None, self.embedding_size))
        else:
            self.reader.build((None, None, self.embedding_size))

    def call(self, char_ids, training=None):
        shape = ops.shape(char_ids)
        batch, words, chars = shape[0], shape[1], shape[2]
        flat = ops.reshape(char_ids, (-1, chars))
        # Only real words are read, each distinct one once per batch (frequent words recur
        # in every batch): reading padding or repeats would cost as much as new words.
        word_mask = ops.any(ops.not_equal(flat, 0), axis=-1)
        indices = tf.where(word_mask)[:, 0]
        real = ops.take(flat, indices, axis=0)
        real, occurrence = tf.raw_ops.UniqueV2(x=real, axis=[0])  # rows, and each row's
        real = tf.ensure_shape(real, [None, None])  # index among them (rank lost by UniqueV2)
        char_mask = ops.not_equal(real, 0)
        embedded = self.embedding(real)
        if self.encoder == "lstm":
            features = self.reader(embedded, mask=char_mask, training=training)
        else:
            convolved = self.reader(embedded)
            very_negative = ops.full_like(convolved, -1e4)
            convolved = ops.where(char_mask[..., None], convolved, very_negative)
            features = ops.max(convolved, axis=1)
        features = ops.take(features, occurrence, axis=0)
        scattered = tf.scatter_nd(
            indices[:, None],
            features,
            ops.stack([ops.cast(batch * words, "int64"), self.output_size]),
        )
        return ops.reshape(scattered, (batch, words, self.output_size))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.output_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_size=self.embedding_size,
            encoder=self.encoder,
            units=self.units,
            kernel_size=self.kernel_size,
            cell=self.cell,
        )
        return config


@keras.saving.register_keras_serializable(package="tagging")
class WordMask(keras.layers.Layer):
    """Passes word features [B, T, D] through, masked where `word_ids` [B, T] is 0.

    Keras 3's `Concatenate` ORs the masks of its inputs, so concatenating the masked word
    embeddings with unmasked character or casing features unmasks the padding: the
    backward recurrent layer would read padding before each sentence's last word and the
    CRF would score tags there. This layer restores the sentence mask after the
    concatenation.

    Call arguments:
        inputs: `[features, word_ids]`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs[0]

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs[1], 0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def build_backbone(config: TaggingConfig, vocabularies: Vocabularies) -> keras.Model:
    """{"word_ids" [B, T], "char_ids" [B, T, C], "case_ids" [B, T] (with casing), "context"
    [B, T, 2 * char_lm_units] (with character LMs)} -> unary potentials [B, T, num_tags],
    masked where word_ids == 0."""
    word_ids = keras.Input((None,), dtype="int32", name="word_ids")
    char_ids = keras.Input((None, None), dtype="int32", name="char_ids")
    inputs = {"char_ids": char_ids, "word_ids": word_ids}
    hidden = keras.layers.Embedding(
        len(vocabularies.words) + 2, config.word_embedding_size, mask_zero=True, name="word_embedding"
    )(word_ids)
    pieces = [hidden]
    if config.casing_embedding_size > 0:
        inputs["case_ids"] = keras.Input((None,), dtype="int32", name="case_ids")
        pieces.append(
            keras.layers.Embedding(len(CASINGS) + 1, config.casing_embedding_size, name="casing_embedding")(
                inputs["case_ids"]
            )
        )
    if config.char_lm_units > 0:
        inputs["context"] = keras.Input((None, 2 * config.char_lm_units), dtype="float32", name="context")
        pieces.append(inputs["context"])
    if config.char_encoder != "none":
        characters = CharacterEncoder(
            len(vocabularies.chars) + 2,
            config.char_embedding_size,
            encoder=config.char_encoder,
            units=config.char_units,
            kernel_size=config.char_kernel_size,
            cell=config.cell,
            name="characters",
        )(char_ids)
        pieces.append(characters)
    if len(pieces) > 1:
        features = keras.layers.Concatenate(name="word_features")(pieces)
        hidden = WordMask(name="word_mask")([features, word_ids])
    hidden = keras.layers.Dropout(config.dropout, name="input_dropout")(hidden)
    for index in range(config.num_layers):
        cell = layers.build_cell(config.cell, config.units, recurrent_dropout=config.recurrent_dropout)
        hidden = layers.Bidirectional(
            layers.Recurrent(cell, return_sequences=True), name=f"bi{config.cell}_{index + 1}"
        )(hidden)
        hidden = keras.layers.Dropout(config.dropout, name=f"dropout_{index + 1}")(hidden)
    potentials = keras.layers.Dense(len(vocabularies.tags), name="potentials")(hidden)
    # Inputs in sorted key order, the order tf.nest gives dicts (no structure warning).
    return keras.Model(dict(sorted(inputs.items())), potentials, name="backbone")


def build_model(config: TaggingConfig, vocabularies: Vocabularies) -> keras.Model:
    """The compiled tagger: a `CRFTagger` (decoder "crf") or the backbone trained with a
    masked softmax cross-entropy (decoder "softmax")."""
    backbone = build_backbone(config, vocabularies)
    if config.decoder == "crf":
        if config.crf_constraints and config.entities:
            crf = CRF.for_tags(vocabularies.tags, config.tag_scheme, name="crf")
        else:
            crf = CRF(len(vocabularies.tags), name="crf")
        model = CRFTagger(backbone, crf=crf, name="tagger")
        # A subclassed model: build its weights now (BackupAndRestore needs a built model).
        dummy = {"char_ids": ops.ones((1, 1, 1), "int32"), "word_ids": ops.ones((1, 1), "int32")}
        if config.casing_embedding_size > 0:
            dummy["case_ids"] = ops.ones((1, 1), "int32")
        if config.char_lm_units > 0:
            dummy["context"] = ops.zeros((1, 1, 2 * config.char_lm_units), "float32")
        model(dict(sorted(dummy.items())))
        model.compile(optimizer=make_optimizer(config))
    else:
        model = backbone
        model.compile(
            optimizer=make_optimizer(config),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    return model


def predict_tag_ids(model: keras.Model, features: dict[str, tf.Tensor], decoding: str = "viterbi") -> tf.Tensor:
    """Best tag ids [B, T]: for a CRF the Viterbi path or, with `decoding="posterior"`, the
    allowed path with the most expected correct tags (`layers.crf.crf_posterior_decode`);
    the per-token argmax for softmax, which both rules give."""
    outputs = model(features, training=False)
    if not isinstance(outputs, dict):
        return ops.cast(ops.argmax(outputs, axis=-1), "int32")
    if decoding == "viterbi":
        return ops.cast(outputs["tags"], "int32")
    transitions, start, end = model.crf.constrained_weights()
    potentials = ops.cast(outputs["potentials"], "float32")
    return decode_scores((potentials, transitions, start, end), outputs["mask"], decoding)


def decode_scores(scores: tuple[tf.Tensor, ...], mask: tf.Tensor, decoding: str) -> tf.Tensor:
    """Tag ids [B, T] of `tag_scores`-like `(unary, transitions, start, end)` by `decoding`
    (viterbi: the most probable path; posterior: the most expected correct tags)."""
    unary, transitions, start, end = (None if part is None else ops.cast(part, "float32") for part in scores)
    decode = crf_posterior_decode if decoding == "posterior" else crf_viterbi_decode
    tags, _ = decode(unary, transitions, mask, start, end)
    return ops.cast(tags, "int32")


def tag_scores(model: keras.Model, features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, ...]:
    """`(unary [B, T, K], transitions [K, K], start [K], end [K])`, float32, such that the
    score of a tag path (unary + transitions between its tags + start/end of its first/last
    tag, as in `CRF`) is the tagger's log-probability of that path up to a per-sentence
    constant: a CRF's potentials and constrained transitions, or a softmax tagger's
    log-probabilities with zero transitions. Summing them over taggers pools the taggers
    log-linearly (`apps.tagging.ensemble`)."""
    outputs = model(features, training=False)
    if isinstance(outputs, dict):
        transitions, start, end = model.crf.constrained_weights()
        unary = ops.cast(outputs["potentials"], "float32")
    else:
        unary = ops.log_softmax(ops.cast(outputs, "float32"), axis=-1)
        transitions, start, end = None, None, None
    num_tags = unary.shape[-1]
    zeros = ops.zeros((num_tags,), "float32")
    transitions = ops.zeros((num_tags, num_tags), "float32") if transitions is None else transitions
    return (
        unary,
        ops.cast(transitions, "float32"),
        zeros if start is None else ops.cast(start, "float32"),
        zeros if end is None else ops.cast(end, "float32"),
    )


def load_model(path) -> keras.Model:
    """Loads a saved tagger (.keras) with the suite's layers registered."""
    layers.register_all()
    with warnings.catch_warnings():
        # Rebuilding a loaded CRFTagger calls its backbone with a plain dict where Keras
        # expects its own tracked dict: a false "structure of inputs" warning.
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        return load_model_file(path, compile=True)
