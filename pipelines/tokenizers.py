"""Tokenizers: SentencePiece (BPE / unigram) and word / character vocabularies.

Vocabularies are trained on the training split and saved in the run directory, so that
evaluation and export use exactly the training vocabulary. Tokenization runs inside the
TF graph (``tensorflow_text.SentencepieceTokenizer``, ``tf.strings``,
``keras.layers.StringLookup``), so it can be part of an exported SavedModel.

A process that loads a SavedModel holding the SentencePiece op must ``import
tensorflow_text`` (or this module) before ``tf.saved_model.load``; use
:func:`load_saved_model`, which does.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import io
import logging
import os
from collections.abc import Iterable, Sequence

import keras
import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

from pipelines._io import write_atomically

logger = logging.getLogger(__name__)

SENTENCEPIECE_FILE = "sentencepiece.model"
#: Ids of the special pieces in every model trained here.
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
#: Text standardisations understood by :func:`split_words`.
STANDARDIZE = (None, "lower", "lower_and_strip_punctuation")


# --------------------------------------------------------------------------- SentencePiece


def train_sentencepiece(
    sentences: Iterable[str],
    vocab_size: int,
    model_type: str = "bpe",
    character_coverage: float = 1.0,
    input_sentence_size: int = 0,
    max_sentence_length: int = 16384,
    user_defined_symbols: Sequence[str] = (),
    seed: int | None = None,
    **trainer_options,
) -> bytes:
    """Trains a SentencePiece model from an iterable of sentences, in memory.

    The sentences are streamed to the trainer through ``sentence_iterator`` (no temporary
    files). Ids 0-3 are ``<pad>``, ``<unk>``, ``<s>``, ``</s>`` (``PAD_ID`` ... ``EOS_ID``).

    Args:
        sentences: training text (e.g. the training split), one sentence or document each.
        vocab_size: number of pieces, special pieces included.
        model_type: ``"bpe"`` or ``"unigram"`` (also ``"word"``, ``"char"``).
        character_coverage: fraction of characters covered (1.0 for small alphabets,
            0.9995 for CJK).
        input_sentence_size: if > 0, train on a random sample of that many sentences.
        max_sentence_length: longer sentences (in bytes) are skipped by the trainer.
        user_defined_symbols: pieces that are never split (e.g. ``<br />``).
        seed: seeds the trainer's sampling where it samples (``input_sentence_size``).
        **trainer_options: any other ``SentencePieceTrainer`` option.

    Returns:
        The serialized model proto (``bytes``); save it with :func:`save_sentencepiece`.
    """
    if model_type not in ("bpe", "unigram", "word", "char"):
        raise ValueError(
            f"model_type must be 'bpe' or 'unigram' (or word/char), got {model_type!r}"
        )
    model = io.BytesIO()
    options = dict(
        model_type=model_type,
        vocab_size=vocab_size,
        character_coverage=character_coverage,
        input_sentence_size=input_sentence_size,
        shuffle_input_sentence=input_sentence_size > 0,
        max_sentence_length=max_sentence_length,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        pad_piece="<pad>",
        minloglevel=2,
        num_threads=max(1, min(4, os.cpu_count() or 1)),
    )
    if user_defined_symbols:
        options["user_defined_symbols"] = list(user_defined_symbols)
    if seed is not None:
        spm.set_random_generator_seed(seed)
    options.update(trainer_options)
    stripped = (sentence for sentence in (s.strip() for s in sentences) if sentence)
    spm.SentencePieceTrainer.train(sentence_iterator=stripped, model_writer=model, **options)
    return model.getvalue()


def save_sentencepiece(
    model_proto: bytes, run_dir: str, file_name: str = SENTENCEPIECE_FILE
) -> str:
    """Writes the model into the run directory (atomically: complete or not at all);
    returns its path."""
    tf.io.gfile.makedirs(run_dir)
    path = os.path.join(run_dir, file_name)
    write_atomically(path, model_proto)
    return path


def load_sentencepiece(run_dir_or_path: str, file_name: str = SENTENCEPIECE_FILE) -> bytes:
    """Reads a model saved by :func:`save_sentencepiece` (a run directory or the file)."""
    path = run_dir_or_path
    if tf.io.gfile.isdir(path):
        path = os.path.join(path, file_name)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{path}: no SentencePiece model (train one with train_sentencepiece)"
        )
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def sentencepiece_op_tokenizer(model_proto: bytes, **kwargs) -> tf_text.SentencepieceTokenizer:
    """``tensorflow_text.SentencepieceTokenizer`` whose model resource is named after the
    model's content.

    Every model resource is created by an op node named after the tokenizer; in a reloaded
    SavedModel, nodes of one name share one kernel, hence one model, whatever models they
    were given. A SavedModel holding several models (a translator's source and target
    models, an ensemble's members) would tokenise and detokenise everything with the
    first. Named by content, distinct models get distinct nodes; equal models may share.
    """
    digest = hashlib.sha256(model_proto).hexdigest()[:16]
    return tf_text.SentencepieceTokenizer(model=model_proto, name=f"sentencepiece_{digest}", **kwargs)


def sentencepiece_processor(model_proto: bytes) -> spm.SentencePieceProcessor:
    """A Python-side processor, e.g. to decode ids or inspect pieces outside the graph."""
    return spm.SentencePieceProcessor(model_proto=model_proto)


@keras.saving.register_keras_serializable(package="pipelines")
class SentencePieceTokenizer(keras.layers.Layer):
    """Tokenizes strings into SentencePiece ids inside the graph.

    Wraps ``tensorflow_text.SentencepieceTokenizer``; the model proto is part of the layer
    (its config holds it base64-encoded), so a ``.keras`` file or SavedModel that contains
    this layer needs no other file.

    Args:
        model_proto: serialized model from :func:`train_sentencepiece`.
        add_bos: prepend ``<s>`` (id 2).
        add_eos: append ``</s>`` (id 3).
        sequence_length: if set, outputs are truncated/padded (with ``PAD_ID``) to this
            length and returned dense ``[batch, sequence_length]``.
        dense: without ``sequence_length``, return a dense tensor padded to the longest
            row (True) or a ``tf.RaggedTensor`` (False).

    Call arguments:
        inputs: string tensor ``[batch]`` (or a scalar string).

    Returns int32 ids; 0 is padding, so ``keras.layers.Embedding(mask_zero=True)`` masks it.
    """

    def __init__(
        self,
        model_proto: bytes | str,
        add_bos: bool = False,
        add_eos: bool = False,
        sequence_length: int | None = None,
        dense: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        if isinstance(model_proto, str):
            model_proto = base64.b64decode(model_proto)
        self.model_proto = model_proto
        self.add_bos = add_bos
        self.add_eos = add_eos
        self.sequence_length = sequence_length
        self.dense = dense
        self._tokenizer = sentencepiece_op_tokenizer(
            model_proto, out_type=tf.int32, add_bos=add_bos, add_eos=add_eos
        )

    @property
    def vocabulary_size(self) -> int:
        return int(self._tokenizer.vocab_size())

    def call(self, inputs):
        return _shape_ids(
            self._tokenizer.tokenize(inputs), self.sequence_length, self.dense, PAD_ID
        )

    def detokenize(self, ids) -> tf.Tensor:
        """Ids (dense, padded with ``PAD_ID``, or ragged) back to strings."""
        if not isinstance(ids, tf.RaggedTensor) and ids.shape.rank == 2:
            ids = tf.RaggedTensor.from_tensor(ids, padding=PAD_ID)
        return self._tokenizer.detokenize(ids)

    def compute_output_spec(self, inputs):
        rank = len(inputs.shape)
        length = self.sequence_length
        shape = tuple(inputs.shape) + (length,) if rank else (length,)
        return keras.KerasTensor(shape, dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            model_proto=base64.b64encode(self.model_proto).decode("ascii"),
            add_bos=self.add_bos,
            add_eos=self.add_eos,
            sequence_length=self.sequence_length,
            dense=self.dense,
        )
        return config


def _shape_ids(ids, sequence_length: int | None, dense: bool, pad):
    """Ragged ``[batch, None]`` (or one dense row) -> padded/truncated as configured."""
    if isinstance(ids, tf.RaggedTensor):
        if sequence_length is not None:
            shape = tf.concat([ids.bounding_shape()[:-1], [sequence_length]], axis=0)
            return ids.to_tensor(default_value=pad, shape=shape)
        return ids.to_tensor(default_value=pad) if dense else ids
    if sequence_length is not None:
        ids = ids[:sequence_length]
        return tf.pad(ids, [[0, sequence_length - tf.shape(ids)[0]]], constant_values=pad)
    return ids


def load_saved_model(path: str):
    """``tf.saved_model.load`` after registering the tensorflow-text ops it may need."""
    assert tf_text.SentencepieceTokenizer  # the import registered the SentencePiece ops
    return tf.saved_model.load(path)


# --------------------------------------------------------------------------- words, chars


_PUNCTUATION = r"""[!"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']"""


def standardize_text(texts: tf.Tensor, standardize: str | None = "lower") -> tf.Tensor:
    """In-graph text normalisation: None, ``"lower"``, ``"lower_and_strip_punctuation"``.

    ``lower`` also replaces HTML line breaks (``<br />``) by spaces.
    """
    if standardize not in STANDARDIZE:
        raise ValueError(f"standardize must be one of {STANDARDIZE}, got {standardize!r}")
    texts = tf.convert_to_tensor(texts, tf.string)
    if standardize is None:
        return texts
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, r"<br\s*/?>", " ")
    if standardize == "lower_and_strip_punctuation":
        texts = tf.strings.regex_replace(texts, _PUNCTUATION, " ")
    return texts


def split_words(
    texts: tf.Tensor, standardize: str | None = "lower", split_punctuation: bool = True
) -> tf.RaggedTensor:
    """In-graph word tokenization: ``[batch]`` strings -> ragged ``[batch, None]`` words.

    With ``split_punctuation`` every punctuation character becomes a token of its own
    (``"great!"`` -> ``"great", "!"``); otherwise words are split on whitespace only.
    """
    texts = standardize_text(texts, standardize)
    if split_punctuation:
        texts = tf.strings.regex_replace(texts, "(" + _PUNCTUATION + ")", r" \1 ")
    return tf.strings.split(texts)


def split_chars(texts: tf.Tensor) -> tf.RaggedTensor:
    """In-graph Unicode character split: ``[batch]`` strings -> ragged ``[batch, None]``."""
    return tf.strings.unicode_split(tf.convert_to_tensor(texts, tf.string), "UTF-8")


def _count(tokenized_batches: Iterable[tf.RaggedTensor]) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for tokens in tokenized_batches:
        counts.update(tokens.flat_values.numpy().tolist())
    return counts


def _batches(texts: Iterable[str] | tf.data.Dataset, batch_size: int = 1024):
    if isinstance(texts, tf.data.Dataset):
        dataset = texts
    else:
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string))
    return dataset.batch(batch_size)


def _select(counts, max_tokens, min_frequency, reserved_tokens) -> list[str]:
    reserved = list(reserved_tokens)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    vocabulary = list(reserved)
    seen = set(reserved)
    for token_bytes, count in ranked:
        if count < min_frequency or (max_tokens is not None and len(vocabulary) >= max_tokens):
            break
        token = token_bytes.decode("utf-8")
        if token not in seen and token != "":
            vocabulary.append(token)
            seen.add(token)
    return vocabulary


def build_word_vocabulary(
    texts: Iterable[str] | tf.data.Dataset,
    max_tokens: int | None = None,
    min_frequency: int = 1,
    standardize: str | None = "lower",
    split_punctuation: bool = True,
    reserved_tokens: Sequence[str] = (),
) -> list[str]:
    """The words of the training texts, most frequent first (ties alphabetically).

    Words are produced by :func:`split_words` with the same options the model will use, so
    the vocabulary matches in-graph tokenization exactly.

    Args:
        texts: strings, or a dataset of scalar strings.
        max_tokens: largest vocabulary size, ``reserved_tokens`` included (the padding
            and out-of-vocabulary ids that ``StringLookup`` adds are not counted).
        min_frequency: drop words seen fewer times.
        reserved_tokens: tokens placed first, e.g. ``("<s>", "</s>")``.

    Returns:
        The vocabulary as a list; give it to :func:`make_lookup` and :func:`save_vocabulary`.
    """
    batches = _batches(texts).map(lambda t: split_words(t, standardize, split_punctuation))
    return _select(_count(batches), max_tokens, min_frequency, reserved_tokens)


def build_char_vocabulary(
    texts: Iterable[str] | tf.data.Dataset,
    max_tokens: int | None = None,
    min_frequency: int = 1,
    reserved_tokens: Sequence[str] = (),
) -> list[str]:
    """The Unicode characters of the training texts, most frequent first."""
    batches = _batches(texts).map(split_chars)
    return _select(_count(batches), max_tokens, min_frequency, reserved_tokens)


def _escape(token: str) -> str:
    return token.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _unescape(line: str) -> str:
    output, index = [], 0
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line):
            output.append({"n": "\n", "r": "\r", "\\": "\\"}.get(line[index + 1], line[index + 1]))
            index += 2
        else:
            output.append(char)
            index += 1
    return "".join(output)


def save_vocabulary(vocabulary: Sequence[str], run_dir: str, file_name: str = "vocab.txt") -> str:
    """Writes one token per line (UTF-8; newline and backslash escaped), atomically;
    returns the path."""
    tf.io.gfile.makedirs(run_dir)
    path = os.path.join(run_dir, file_name)
    write_atomically(path, "".join(_escape(token) + "\n" for token in vocabulary).encode("utf-8"))
    return path


def load_vocabulary(path: str) -> list[str]:
    """Reads a file written by :func:`save_vocabulary`."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no vocabulary file")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read().decode("utf-8")
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [_unescape(line) for line in lines]


def make_lookup(
    vocabulary: Sequence[str],
    invert: bool = False,
    num_oov_indices: int = 1,
    mask_token: str | None = "",
) -> keras.layers.StringLookup:
    """A ``StringLookup`` over the vocabulary: id 0 is padding (``""``), 1 is OOV.

    With ``invert=True`` it maps ids back to tokens.
    """
    return keras.layers.StringLookup(
        vocabulary=list(vocabulary),
        mask_token=mask_token,
        num_oov_indices=num_oov_indices,
        invert=invert,
        output_mode="int",
    )


@keras.saving.register_keras_serializable(package="pipelines")
class WordTokenizer(keras.layers.Layer):
    """Strings to word (or character) ids in the graph, with a fixed vocabulary.

    Uses :func:`split_words` (or :func:`split_chars` with ``level="char"``) and a
    ``StringLookup``; id 0 is padding, 1 out-of-vocabulary, then the vocabulary in order.

    Args:
        vocabulary: tokens (from :func:`build_word_vocabulary` / :func:`build_char_vocabulary`).
        level: ``"word"`` or ``"char"``.
        standardize, split_punctuation: as in :func:`split_words` (word level only).
        sequence_length: pad/truncate to this length (dense output).

    Call arguments:
        inputs: string tensor ``[batch]``.

    Returns int64 ids ``[batch, length]`` padded with 0 (or ragged if ``dense=False``).
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        level: str = "word",
        standardize: str | None = "lower",
        split_punctuation: bool = True,
        sequence_length: int | None = None,
        dense: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "int64")
        super().__init__(**kwargs)
        if level not in ("word", "char"):
            raise ValueError(f"level must be 'word' or 'char', got {level!r}")
        self.vocabulary = list(vocabulary)
        self.level = level
        self.standardize = standardize
        self.split_punctuation = split_punctuation
        self.sequence_length = sequence_length
        self.dense = dense
        self.lookup = make_lookup(self.vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary) + 2

    def build(self, input_shape):
        self.built = True

    def tokenize(self, inputs):
        if self.level == "char":
            return split_chars(inputs)
        return split_words(inputs, self.standardize, self.split_punctuation)

    def call(self, inputs):
        tokens = self.tokenize(inputs)
        if isinstance(tokens, tf.RaggedTensor):
            ids = tf.ragged.map_flat_values(self.lookup, tokens)
        else:  # a scalar string gives one dense row
            ids = self.lookup(tokens)
        return _shape_ids(ids, self.sequence_length, self.dense, 0)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs.shape) + (self.sequence_length,), dtype="int64")

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=self.vocabulary,
            level=self.level,
            standardize=self.standardize,
            split_punctuation=self.split_punctuation,
            sequence_length=self.sequence_length,
            dense=self.dense,
        )
        return config
