"""Caption text: tokens, the vocabulary trained on the training captions, and ids.

Captions are tokenised as the COCO metrics tokenise them (`ptb_tokenize`: lowercased PTB
tokens, punctuation dropped), so that what the model learns to write is what is scored.
`words` keeps the tokens seen at least `min_word_count` times; `sentencepiece` trains a
SentencePiece model of `vocab_size` pieces on the tokenised captions. Ids are the same
for both: 0 padding, 1 unknown, 2 `<start>`, 3 `<end>`, then the vocabulary. The
vocabulary is saved in RUN_DIR/vocab and reused on resume, by evaluate and by exports;
ids become text inside the graph (`detokenize`).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.captioning.ptb_tokenizer import ptb_tokenize
from pipelines.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SentencePieceTokenizer,
    load_sentencepiece,
    load_vocabulary,
    save_sentencepiece,
    save_vocabulary,
    sentencepiece_processor,
    train_sentencepiece,
)

START, END, UNKNOWN = "<start>", "<end>", "<unk>"
WORDS_FILE = "words.txt"
SENTENCEPIECE_FILE = "captions.model"
assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)  # the layout both kinds share


class CaptionText:
    """The run's caption vocabulary: `kind` "words" (`tokens` is the list of ids 0, 1, 2,
    3, ... as strings) or "sentencepiece" (`model_proto`)."""

    def __init__(self, kind: str, tokens: Sequence[str] = (), model_proto: bytes = b""):
        if kind not in ("words", "sentencepiece"):
            raise ValueError(f"--tokenizer must be words or sentencepiece, got {kind!r}")
        self.kind = kind
        self.tokens = list(tokens)
        self.model_proto = model_proto
        self._ids = {token: index for index, token in enumerate(self.tokens)}
        self._processor = sentencepiece_processor(model_proto) if model_proto else None

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, config, captions: Sequence[str], vocab_dir: Path) -> CaptionText:
        """From the training captions (or the run's saved vocabulary, when there is one)."""
        existing = cls.load(config.tokenizer, vocab_dir)
        if existing is not None:
            return existing
        tokenized = [ptb_tokenize(caption) for caption in captions]
        if config.tokenizer == "words":
            counts = collections.Counter(word for caption in tokenized for word in caption.split())
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            words = [word for word, count in ranked if count >= config.min_word_count]
            text = cls("words", ["", UNKNOWN, START, END, *words])
            save_vocabulary(text.tokens, str(vocab_dir), WORDS_FILE)
            return text
        proto = train_sentencepiece(
            tokenized, vocab_size=config.vocab_size, model_type="unigram", seed=config.seed,
            hard_vocab_limit=False,  # small caption sets get fewer pieces, not an error
        )
        save_sentencepiece(proto, str(vocab_dir), SENTENCEPIECE_FILE)
        return cls("sentencepiece", model_proto=proto)

    @classmethod
    def load(cls, kind: str, vocab_dir: Path) -> CaptionText | None:
        vocab_dir = Path(vocab_dir)
        if kind == "words" and (vocab_dir / WORDS_FILE).exists():
            return cls("words", load_vocabulary(str(vocab_dir / WORDS_FILE)))
        if kind == "sentencepiece" and (vocab_dir / SENTENCEPIECE_FILE).exists():
            return cls("sentencepiece", model_proto=load_sentencepiece(str(vocab_dir), SENTENCEPIECE_FILE))
        return None

    # ------------------------------------------------------------------ ids
    @property
    def size(self) -> int:
        if self.kind == "words":
            return len(self.tokens)
        return int(self._processor.get_piece_size())

    def encode(self, caption: str, max_length: int) -> np.ndarray:
        """int32 ids of a caption (no <start>/<end>), cut to `max_length`."""
        tokenized = ptb_tokenize(caption)
        if self.kind == "words":
            ids = [self._ids.get(word, UNK_ID) for word in tokenized.split()]
        else:
            ids = self._processor.encode(tokenized)
        return np.asarray(ids[:max_length], np.int32)

    def pieces(self, ids: Sequence[int]) -> list[str]:
        """The token of each id (for plots); <end> included, padding dropped."""
        ids = [int(i) for i in ids if int(i) != PAD_ID]
        if self.kind == "words":
            return [self.tokens[i] if i < len(self.tokens) else UNKNOWN for i in ids]
        return [self._processor.id_to_piece(i) for i in ids]

    def decode(self, ids: Sequence[int]) -> str:
        """Python-side text of ids (up to <end>)."""
        kept = []
        for index in (int(i) for i in ids):
            if index == EOS_ID:
                break
            if index not in (PAD_ID, BOS_ID):
                kept.append(index)
        if self.kind == "words":
            return " ".join(self.tokens[i] for i in kept)
        return self._processor.decode(kept)

    def graph_detokenizer(self) -> GraphDetokenizer:
        return GraphDetokenizer(self)


class GraphDetokenizer(tf.Module):
    """Ids `[N, T]` (<end> and padding included) -> caption strings `[N]`, in the graph."""

    def __init__(self, text: CaptionText):
        super().__init__(name="detokenizer")
        self.kind = text.kind
        if text.kind == "words":
            self.table = tf.constant(text.tokens, tf.string)
        else:
            self.sentencepiece = SentencePieceTokenizer(text.model_proto, dense=False)

    def __call__(self, token_ids: tf.Tensor) -> tf.Tensor:
        token_ids = tf.cast(token_ids, tf.int32)
        # Everything from <end> on is dropped, and the start and padding ids.
        ended = tf.cumsum(tf.cast(tf.equal(token_ids, EOS_ID), tf.int32), axis=1) > 0
        keep = tf.logical_and(tf.logical_not(ended), token_ids > BOS_ID)
        keep = tf.logical_or(keep, tf.logical_and(tf.logical_not(ended), tf.equal(token_ids, UNK_ID)))
        kept = tf.ragged.boolean_mask(token_ids, keep)
        if self.kind == "words":
            words = tf.ragged.map_flat_values(tf.gather, self.table, kept)
            return tf.strings.reduce_join(words, axis=1, separator=" ")
        return self.sentencepiece.detokenize(kept)
