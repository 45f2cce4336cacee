"""Text <-> token ids for the language model, in the TF graph (so the export can use it).

Three kinds of tokens, all trained on the training split only:

- ``char``: every Unicode character (newline included) is a token.
- ``word``: whitespace-separated words; a newline is the token ``<eos>`` (Mikolov's PTB
  convention: "replace each newline with <eos>"). Decoding joins words with spaces and
  turns ``<eos>`` back into newlines.
- ``sentencepiece``: pieces of a SentencePiece model (Kudo & Richardson 2018); every line
  is encoded on its own and ends with ``</s>``, which decodes to a newline.

For char and word tokens id 0 is ``<unk>`` (out of vocabulary) and the other ids follow
the vocabulary, most frequent first. Every kind has a *boundary* token (newline,
``<eos>``, ``</s>``) that the generator puts before a prompt, as the text would have one
before a new line.
"""

from __future__ import annotations

import collections
import json
import logging
import os

import numpy as np
import tensorflow as tf

from apps.common.config import write_atomically
from pipelines import tokenizers as shared

UNK = "<unk>"
WORD_EOS = "<eos>"
KINDS = ("char", "word", "sentencepiece")
DEFAULT_SENTENCEPIECE_SIZE = 4000
_CONFIG_FILE = "tokenizer.json"
_TOKENS_FILE = "tokens.txt"

logger = logging.getLogger(__name__)


class TextTokenizer(tf.Module):
    """Encodes a text into one id sequence and decodes ids back, inside the graph.

    Build one with :meth:`train` on the training text, keep it with :meth:`save` /
    :meth:`load`. ``encode`` (Python strings to NumPy ids) is for data preparation;
    ``encode_tf`` / ``decode_tf`` are `tf.function`s for exported graphs.
    """

    def __init__(
        self,
        kind: str,
        tokens: list[str],
        lowercase: bool = False,
        sentencepiece_model: bytes | None = None,
    ):
        super().__init__(name=f"{kind}_tokenizer")
        if kind not in KINDS:
            raise ValueError(f"tokenizer must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.tokens = list(tokens)
        self.lowercase = lowercase
        self.sentencepiece_model = sentencepiece_model
        if kind == "sentencepiece":
            if sentencepiece_model is None:
                raise ValueError("a sentencepiece tokenizer needs its model")
            self._sentencepiece = shared.sentencepiece_op_tokenizer(
                sentencepiece_model, out_type=tf.int32
            )
            self.boundary_id = shared.EOS_ID
            self.unknown_id = shared.UNK_ID
            texts = [_piece_text(piece) for piece in self.tokens]
            texts[shared.EOS_ID] = "\n"
        else:
            boundary = "\n" if kind == "char" else WORD_EOS
            if not self.tokens or self.tokens[0] != UNK:
                raise ValueError(f"the first token must be {UNK!r}")
            if boundary not in self.tokens:
                self.tokens.append(boundary)  # a text without line breaks still gets one
            self.boundary_id = self.tokens.index(boundary)
            self.unknown_id = 0
            self._table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.tokens[1:]),
                    tf.range(1, len(self.tokens), dtype=tf.int32),
                ),
                default_value=0,
            )
            texts = ["" if kind == "char" else UNK] + self.tokens[1:]
        self.token_texts = texts
        self._texts = tf.constant(texts)
        self._added_texts = tf.constant([self.token_text(i) for i in range(len(texts))])

    # ------------------------------------------------------------------ building
    @classmethod
    def train(
        cls,
        kind: str,
        text: str,
        vocab_size: int = 0,
        lowercase: bool = False,
        sentencepiece_type: str = "unigram",
        seed: int | None = None,
    ) -> TextTokenizer:
        """Learns the vocabulary of ``text`` (the training split)."""
        if kind not in KINDS:
            raise ValueError(f"tokenizer must be one of {KINDS}, got {kind!r}")
        if kind == "sentencepiece":
            lines = (line.lower() if lowercase else line for line in text.split("\n"))
            model = shared.train_sentencepiece(
                lines,
                vocab_size=vocab_size or DEFAULT_SENTENCEPIECE_SIZE,
                model_type=sentencepiece_type,
                seed=seed,
                hard_vocab_limit=False,  # small texts get the pieces they have
            )
            processor = shared.sentencepiece_processor(model)
            pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
            return cls(kind, pieces, lowercase, model)
        splitter = _split_chars if kind == "char" else _split_words
        pieces = splitter(_normalize(tf.constant(text), lowercase)).numpy()
        counts = collections.Counter(pieces.tolist())
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        tokens = [UNK] + [piece.decode("utf-8") for piece, _ in ranked if piece != UNK.encode()]
        if vocab_size > 0:
            tokens = tokens[:vocab_size]
        return cls(kind, tokens, lowercase)

    def save(self, folder: str | os.PathLike) -> None:
        folder = str(folder)
        os.makedirs(folder, exist_ok=True)
        config = {"kind": self.kind, "lowercase": self.lowercase, "vocab_size": self.vocab_size}
        shared.save_vocabulary(self.tokens, folder, _TOKENS_FILE)
        if self.sentencepiece_model is not None:
            shared.save_sentencepiece(self.sentencepiece_model, folder)
        # Last, atomically: `load_or_train` trusts a folder holding this file.
        write_atomically(os.path.join(folder, _CONFIG_FILE), json.dumps(config, indent=2))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TextTokenizer:
        folder = str(folder)
        path = os.path.join(folder, _CONFIG_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no tokenizer; run `train` first")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        tokens = shared.load_vocabulary(os.path.join(folder, _TOKENS_FILE))
        model = shared.load_sentencepiece(folder) if config["kind"] == "sentencepiece" else None
        return cls(config["kind"], tokens, config["lowercase"], model)

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def token_text(self, token_id: int, line_start: bool = False) -> str:
        """The text a generated token adds: a character, a space and a word, a piece with
        its word-boundary space, or a newline for the boundary token. At the start of a
        line (`line_start`: after a newline, or after an empty prompt or one that ends in
        whitespace) words and pieces lose their leading space."""
        token_id = int(token_id)
        if token_id == self.boundary_id:
            return "\n"
        text = (" " if self.kind == "word" else "") + self.token_texts[token_id]
        if line_start and self.kind != "char" and text.startswith(" "):
            return text[1:]
        return text

    def continuation_tf(self, prompt, ids):
        """The text that token ids `[N]` add after the string `prompt`: the `token_text`
        of each, joined, so that `prompt + continuation` is what streaming prints."""
        texts = tf.gather(self._added_texts, ids)
        if self.kind == "char":
            return tf.strings.reduce_join(texts)
        last = tf.strings.substr(prompt, tf.maximum(tf.strings.length(prompt) - 1, 0), 1)
        prompt_ends_line = tf.reduce_any(tf.equal(last, ["", " ", "\n", "\t", "\r"]))
        after = tf.concat([[prompt_ends_line], tf.equal(ids[:-1], self.boundary_id)], axis=0)
        line_start = after[: tf.size(ids)]
        texts = tf.where(line_start, tf.strings.regex_replace(texts, "^ ", ""), texts)
        return tf.strings.reduce_join(texts)

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str) -> np.ndarray:
        """A whole text -> int32 ids (NumPy)."""
        return self.encode_tf(tf.constant(text)).numpy()

    def decode(self, ids) -> str:
        return self.decode_tf(tf.constant(np.asarray(ids, dtype=np.int32))).numpy().decode("utf-8")

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def encode_tf(self, text):
        text = _normalize(text, self.lowercase)
        if self.kind == "sentencepiece":
            lines = tf.strings.split(text, "\n")
            ids = self._sentencepiece.tokenize(lines)
            ends = tf.fill([tf.shape(lines)[0], 1], tf.constant(self.boundary_id, tf.int32))
            with_ends = tf.concat([ids, tf.RaggedTensor.from_tensor(ends)], axis=1)
            return with_ends.flat_values[:-1]  # the last line has no newline after it
        splitter = _split_chars if self.kind == "char" else _split_words
        return self._table.lookup(splitter(text))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def decode_tf(self, ids):
        if self.kind == "sentencepiece":
            is_end = tf.equal(ids, self.boundary_id)
            line = tf.cumsum(tf.cast(is_end, tf.int32), exclusive=True)
            keep = tf.logical_not(is_end)
            lines = tf.RaggedTensor.from_value_rowids(
                tf.boolean_mask(ids, keep),
                tf.cast(tf.boolean_mask(line, keep), tf.int64),
                nrows=tf.cast(tf.reduce_sum(tf.cast(is_end, tf.int32)) + 1, tf.int64),
            )
            return tf.strings.reduce_join(self._sentencepiece.detokenize(lines), separator="\n")
        pieces = tf.gather(self._texts, ids)
        if self.kind == "char":
            return tf.strings.reduce_join(pieces)
        joined = tf.strings.reduce_join(pieces, separator=" ")
        return tf.strings.regex_replace(joined, " ?" + WORD_EOS + " ?", "\n")


def load_or_train(config, train_text: str, folder: str | os.PathLike) -> TextTokenizer:
    """A run's tokenizer: the one saved in ``folder`` (it must be of the kind
    ``config.tokenizer``), else one trained on ``train_text`` with the settings of
    ``config`` (a ``LanguageModelConfig``) and saved there, so a resumed run reuses it."""
    if os.path.exists(os.path.join(folder, _CONFIG_FILE)):
        tokenizer = TextTokenizer.load(folder)
        if tokenizer.kind != config.tokenizer:
            raise ValueError(
                f"{folder}: this run's tokenizer is {tokenizer.kind!r}, not "
                f"{config.tokenizer!r}; start a new --run-dir"
            )
        return tokenizer
    tokenizer = TextTokenizer.train(
        config.tokenizer,
        train_text,
        vocab_size=config.vocab_size,
        lowercase=config.lowercase,
        sentencepiece_type=config.sentencepiece_type,
        seed=config.seed,
    )
    tokenizer.save(folder)
    logger.info(
        "%s vocabulary of %d tokens saved in %s", config.tokenizer, tokenizer.vocab_size, folder
    )
    return tokenizer


def _normalize(text: tf.Tensor, lowercase: bool) -> tf.Tensor:
    text = tf.strings.regex_replace(text, "\r\n?", "\n")
    return tf.strings.lower(text, encoding="utf-8") if lowercase else text


def _split_chars(text: tf.Tensor) -> tf.Tensor:
    return shared.split_chars(text)


def _split_words(text: tf.Tensor) -> tf.Tensor:
    spaced = tf.strings.regex_replace(text, "\n", " " + WORD_EOS + " ")
    return shared.split_words(spaced, standardize=None, split_punctuation=False)


def _piece_text(piece: str) -> str:
    if piece in ("<pad>", "<s>", "</s>"):
        return ""
    return piece.replace("\u2581", " ")
