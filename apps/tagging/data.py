"""The tagging app's data: sentences from TFDS or local CoNLL files, tag-scheme conversion,
vocabularies, and the in-graph featurizer shared by training and the export."""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.tagging.config import TaggingConfig
from pipelines import batching, tokenizers
from pipelines.conll import read_conll, read_conllu
from pipelines.errors import DataFormatError
from pipelines.tag_schemes import (
    convert_tags,
    detect_scheme,
    entity_types,
    invalid_position,
    normalize_scheme,
    scheme_tags,
    split_tag,
)

logger = logging.getLogger(__name__)

WORDS_FILE = "words.txt"
CHARS_FILE = "chars.txt"
TAGS_FILE = "tags.txt"
PAD_ID, UNKNOWN_ID = 0, 1  # ids 0 and 1 of the word and character lookups


@dataclasses.dataclass
class Split:
    """Sentences of one split with their tags as read (`scheme`: their tag scheme for
    entity tasks, None for per-token labels such as POS)."""

    name: str
    tokens: list[list[str]]
    tags: list[list[str]]
    scheme: str | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def num_tokens(self) -> int:
        return sum(len(sentence) for sentence in self.tokens)

    def subset(self, indices, name: str) -> Split:
        return Split(name, [self.tokens[i] for i in indices], [self.tags[i] for i in indices], self.scheme)


# ----------------------------------------------------------------------------- reading


def _file_format(path: str, file_format: str) -> str:
    if file_format != "auto":
        return file_format
    base = os.path.basename(path).removesuffix(".gz")
    return "conllu" if base.endswith(".conllu") else "conll"


def read_file(path: str, config: TaggingConfig, name: str) -> Split:
    """Reads a CoNLL column file or a CoNLL-U file into (tokens, tags) of `tag_field`."""
    field = config.resolved_tag_field()
    if _file_format(path, config.file_format) == "conllu":
        if field not in ("upos", "xpos", "deprel", "lemmas", "feats"):
            raise ValueError(
                f"{path}: CoNLL-U files hold upos and xpos tags, not {field!r}; "
                "pass --tag-field upos or --tag-field xpos"
            )
        sentences = read_conllu(path, fields=("tokens", field), line_numbers=True)
    else:
        sentences = read_conll(path, columns=config.columns or None, line_numbers=True)
        if field not in sentences[0]:
            columns = [column for column in sentences[0] if column != "line_numbers"]
            if "tags" in sentences[0]:
                field = "tags"  # a two-column file: tokens and tags
            else:
                raise DataFormatError(
                    path,
                    None,
                    f"no {field!r} column (columns: {', '.join(columns)}); name the "
                    "columns with --columns tokens,pos,chunks,ner or pick --tag-field",
                )
    if config.entities:
        for sentence in sentences:
            for tag, line_number in zip(sentence[field], sentence["line_numbers"]):
                try:
                    split_tag(tag)
                except ValueError as error:
                    raise DataFormatError(path, line_number, str(error)) from None
    return Split(name, [s["tokens"] for s in sentences], [s[field] for s in sentences])


def read_tfds(config: TaggingConfig, split: str, name: str) -> Split:
    """Reads a TFDS split as strings (fails fast offline, naming the local-file options)."""
    from pipelines.tfds_source import load_tfds

    field = config.resolved_tag_field()
    dataset = load_tfds(config.resolved_tfds_name(), split, data_dir=config.tfds_data_dir or None)
    tokens, tags = [], []
    for index, example in enumerate(dataset.as_numpy_iterator()):
        if field not in example:
            raise ValueError(
                f"TFDS {config.resolved_tfds_name()}: no {field!r} feature "
                f"(features: {', '.join(sorted(example))}); pick --tag-field"
            )
        words = [w.decode("utf-8") for w in example["tokens"]]
        labels = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in example[field]]
        if len(words) != len(labels):
            raise ValueError(
                f"TFDS {config.resolved_tfds_name()} {split} example {index}: "
                f"{len(words)} tokens but {len(labels)} {field} tags"
            )
        if words:
            tokens.append(words)
            tags.append(labels)
    return Split(name, tokens, tags)


def _carve_dev(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    order = np.random.default_rng(seed).permutation(len(train))
    count = max(1, int(round(fraction * len(train))))
    if count >= len(train):
        raise ValueError(f"{len(train)} training sentences are too few to carve a dev set from")
    return train.subset(sorted(order[count:]), "train"), train.subset(sorted(order[:count]), "dev")


def _resolve_scheme(split: Split, config: TaggingConfig) -> Split:
    """Sets the split's input tag scheme (detected, or checked when given)."""
    if not config.entities:
        split.scheme = None
        return split
    if config.input_scheme == "auto":
        split.scheme = detect_scheme(split.tags)
        logger.info("%s: %d sentences, tags read as %s (detected)", split.name, len(split), split.scheme)
        return split
    split.scheme = normalize_scheme(config.input_scheme)
    invalid = [(i, p) for i, tags in enumerate(split.tags) if (p := invalid_position(tags, split.scheme)) is not None]
    if invalid:
        sentence, position = invalid[0]
        logger.warning(
            "%s: %d sentences are not valid %s (first: sentence %d, token %d: %s); they are "
            "decoded leniently, like conlleval", split.name, len(invalid), split.scheme.upper(),
            sentence, position, " ".join(split.tags[sentence]),
        )
    return split


def _read_split(config: TaggingConfig, name: str) -> Split | None:
    """The split `name` (train, dev, test) of the local files (those of a run trained on
    local files) or of TFDS; None for a dev split to carve from the training split."""
    if not config.train_file:
        return read_tfds(config, name, name)
    path = {"train": config.train_file, "dev": config.dev_file, "test": config.test_file}[name]
    if path:
        return read_file(path, config, name)
    if name == "test":
        raise ValueError("--split test needs --test-file (the run was trained on local files)")
    return None


def load_split(config: TaggingConfig, name: str) -> Split:
    """One split to score ("dev" or "test"), read alone: the training data is read only
    when the dev split is carved from it."""
    split = _read_split(config, name)
    if split is None:
        return load_splits(config)[name]
    return _resolve_scheme(split, config)


def load_splits(config: TaggingConfig, with_test: bool = False) -> dict[str, Split]:
    """The train and dev splits (and test when asked: evaluate it once, at the end)."""
    splits = {"train": _read_split(config, "train")}
    dev = _read_split(config, "dev")
    if dev is not None:
        splits["dev"] = dev
    if with_test:
        splits["test"] = _read_split(config, "test")
    if "dev" not in splits:
        if config.valid_fraction <= 0:
            raise ValueError("no dev split: pass --dev-file or a --valid-fraction > 0")
        splits["train"], splits["dev"] = _carve_dev(splits["train"], config.valid_fraction, config.seed)
    if config.max_train_sentences > 0:
        splits["train"] = splits["train"].subset(range(min(config.max_train_sentences, len(splits["train"]))), "train")
    return {name: _resolve_scheme(split, config) for name, split in splits.items()}


def training_tags(split: Split, config: TaggingConfig) -> list[list[str]]:
    """The split's tags in the training scheme (unchanged for per-token labels)."""
    if split.scheme is None:
        return split.tags
    return [convert_tags(tags, split.scheme, config.tag_scheme) for tags in split.tags]


# ----------------------------------------------------------------------------- vocabularies


@dataclasses.dataclass
class Vocabularies:
    words: list[str]
    chars: list[str]
    tags: list[str]

    def save(self, vocab_dir: str | Path) -> None:
        for file_name, values in ((WORDS_FILE, self.words), (CHARS_FILE, self.chars), (TAGS_FILE, self.tags)):
            tokenizers.save_vocabulary(values, str(vocab_dir), file_name)

    @classmethod
    def load(cls, vocab_dir: str | Path) -> Vocabularies:
        vocab_dir = str(vocab_dir)
        for file_name in (WORDS_FILE, CHARS_FILE, TAGS_FILE):
            if not os.path.exists(os.path.join(vocab_dir, file_name)):
                raise FileNotFoundError(f"{vocab_dir}/{file_name}: no vocabulary; run `train` first")
        return cls(
            *(tokenizers.load_vocabulary(os.path.join(vocab_dir, f)) for f in (WORDS_FILE, CHARS_FILE, TAGS_FILE))
        )


def build_vocabularies(train: Split, config: TaggingConfig) -> Vocabularies:
    """Words (normalised as the model sees them), characters and tags of the training split."""
    flat = [token for sentence in train.tokens for token in sentence]
    normalized = normalize_words(tf.constant(flat), config).numpy()
    counts = collections.Counter(word.decode("utf-8") for word in normalized)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    words = [w for w, c in ranked if c >= config.min_word_frequency and w]
    if config.max_vocabulary_size > 0:
        words = words[: config.max_vocabulary_size]
    char_counts = collections.Counter(char for token in flat for char in token)
    chars = [c for c, _ in sorted(char_counts.items(), key=lambda item: (-item[1], item[0]))]
    converted = training_tags(train, config)
    if config.entities:
        tags = scheme_tags(entity_types(converted), config.tag_scheme)
    else:
        tags = sorted({tag for sentence in converted for tag in sentence})
    logger.info("vocabularies: %d words, %d characters, %d tags", len(words), len(chars), len(tags))
    return Vocabularies(words, chars, tags)


def tag_ids(tags: list[list[str]], vocabulary: list[str], split_name: str) -> list[np.ndarray]:
    """Tag strings -> ids; tags unseen in training become id 0 (with a warning)."""
    index = {tag: i for i, tag in enumerate(vocabulary)}
    unknown = collections.Counter(tag for sentence in tags for tag in sentence if tag not in index)
    if unknown:
        logger.warning("%s: tags unseen in training, counted as %r: %s", split_name, vocabulary[0], dict(unknown))
    return [np.array([index.get(tag, 0) for tag in sentence], dtype=np.int32) for sentence in tags]


# ----------------------------------------------------------------------------- featurizer


def normalize_words(tokens: tf.Tensor, config: TaggingConfig) -> tf.Tensor:
    """In-graph word normalisation for the word lookup: lower-case, digits -> 0."""
    return _normalize(tokens, config.lowercase, config.normalize_digits)


def _normalize(tokens, lowercase: bool, normalize_digits: bool):
    if lowercase:
        tokens = tf.strings.lower(tokens, encoding="utf-8")
    if normalize_digits:
        tokens = tf.strings.regex_replace(tokens, "[0-9]", "0")
    return tokens


def _table(vocabulary: list[str]) -> tf.lookup.StaticHashTable:
    keys = tf.constant(vocabulary or ["\x00"], tf.string)
    values = tf.range(2, tf.size(keys, out_type=tf.int64) + 2, dtype=tf.int64)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), UNKNOWN_ID)


#: Word shapes of the casing feature (Reimers & Gurevych 2017); id 0 is padding.
CASINGS = ("other", "numeric", "mainly_numeric", "all_lower", "all_upper", "initial_upper", "contains_digit")


def casing_ids(tokens: tf.Tensor) -> tf.Tensor:
    """In-graph word shape ids in [1, len(CASINGS)], the first of CASINGS that applies."""
    digits = tf.strings.length(tf.strings.regex_replace(tokens, "[^0-9]", ""), unit="UTF8_CHAR")
    length = tf.maximum(tf.strings.length(tokens, unit="UTF8_CHAR"), 1)
    tests = [
        tf.strings.regex_full_match(tokens, "[0-9]+"),
        tf.cast(digits, tf.float32) / tf.cast(length, tf.float32) > 0.5,
        tf.strings.regex_full_match(tokens, r"[^\p{Lu}]*\p{Ll}[^\p{Lu}]*"),
        tf.strings.regex_full_match(tokens, r"[^\p{Ll}]*\p{Lu}[^\p{Ll}]*"),
        tf.strings.regex_full_match(tokens, r"\p{Lu}.*"),
        digits > 0,
    ]
    ids = tf.ones_like(digits)  # other
    for index, test in reversed(list(enumerate(tests, start=2))):
        ids = tf.where(test, index, ids)
    return tf.cast(ids, tf.int32)


class Featurizer(tf.Module):
    """Token strings -> word ids, character ids and casing ids, in the graph (training
    and export).

    Word ids look up the normalised word (id 0 padding, 1 unknown); character ids look up
    the first `max_word_length` characters of the word as written (case kept); casing ids
    (with `casing_embedding_size` > 0) give the word's shape (`CASINGS`). With `context`
    (the frozen character language models of `char_lm`), "context" holds each word's
    contextual string features [T, D]: `batch` computes them in the graph; `make_dataset`
    computes them once per sentence (`context_features`) and caches them.
    """

    def __init__(self, vocabularies: Vocabularies, config: TaggingConfig, context=None):
        super().__init__(name="featurizer")
        self.context = context  # char_lm.ContextualStrings, or None
        self.lowercase = config.lowercase
        self.normalize_digits = config.normalize_digits
        self.max_word_length = config.max_word_length
        self.casing = config.casing_embedding_size > 0
        self.word_table = _table(vocabularies.words)
        self.vocabulary_size = len(vocabularies.words) + 2  # word ids are in [0, vocabulary_size)
        self.char_table = _table(vocabularies.chars)
        self.char_vocabulary_size = len(vocabularies.chars) + 2  # character ids are in [0, this)

    @staticmethod
    def sanitize(tokens):
        """Makes any byte string valid UTF-8 (invalid bytes become U+FFFD)."""
        return tf.strings.unicode_transcode(
            tokens, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )

    def word_ids(self, tokens):
        normalized = _normalize(self.sanitize(tokens), self.lowercase, self.normalize_digits)
        return tf.cast(self.word_table.lookup(normalized), tf.int32)

    def char_ids(self, tokens):
        """[...] strings -> ragged [..., (chars)] int32 ids."""
        chars = tf.strings.unicode_split(self.sanitize(tokens), "UTF-8", errors="replace")
        chars = chars[..., : self.max_word_length]
        return tf.ragged.map_flat_values(lambda c: tf.cast(self.char_table.lookup(c), tf.int32), chars)

    def sentence(self, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
        """One sentence [T] -> word_ids [T], char_ids [T, C] (0-padded), case_ids [T]."""
        features = {"word_ids": self.word_ids(tokens), "char_ids": self.char_ids(tokens).to_tensor(0)}
        if self.casing:
            features["case_ids"] = casing_ids(self.sanitize(tokens))
        return features

    def batch(self, tokens: tf.RaggedTensor) -> dict[str, tf.Tensor]:
        """Ragged [B, (T)] sentences -> word_ids [B, T], char_ids [B, T, C], case_ids
        [B, T] (0-padded)."""
        features = {
            "word_ids": tf.ragged.map_flat_values(self.word_ids, tokens).to_tensor(0),
            "char_ids": self.char_ids(tokens).to_tensor(0),
        }
        if self.casing:
            cases = tf.ragged.map_flat_values(lambda t: casing_ids(self.sanitize(t)), tokens)
            features["case_ids"] = cases.to_tensor(0)
        if self.context is not None:
            features["context"] = self.context(self.char_ids(tokens))
        return features

    def context_features(self, tokens: list[list[str]], batch_size: int = 128) -> list[np.ndarray]:
        """Each sentence's contextual string features [T, D] (batches of similar length)."""
        order = np.argsort([len(sentence) for sentence in tokens], kind="stable")
        compute = tf.function(
            lambda ragged: self.context(self.char_ids(ragged)),
            input_signature=[tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1)],
        )
        features: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(tokens)
        for start in range(0, len(tokens), batch_size):
            index = order[start : start + batch_size]
            ragged = tf.ragged.constant([tokens[i] for i in index], dtype=tf.string, ragged_rank=1)
            for i, row in zip(index, compute(ragged).numpy()):
                features[i] = row[: len(tokens[i])]
        return features


# ----------------------------------------------------------------------------- datasets


def _sentences_dataset(
    tokens: list[list[str]], ids: list[np.ndarray] | None, context: list[np.ndarray] | None = None
) -> tf.data.Dataset:
    lengths = np.array([len(s) for s in tokens], dtype=np.int64)
    flat = tf.constant([token for sentence in tokens for token in sentence], tf.string)
    columns = {"tokens": tf.RaggedTensor.from_row_lengths(flat, lengths)}
    if ids is not None:
        flat_ids = np.concatenate(ids) if ids else np.zeros(0, np.int32)
        columns["tags"] = tf.RaggedTensor.from_row_lengths(flat_ids, lengths)
    if context is not None:
        columns["context"] = tf.RaggedTensor.from_row_lengths(np.concatenate(context), lengths)
    return tf.data.Dataset.from_tensor_slices(columns)


def make_dataset(
    tokens: list[list[str]],
    ids: list[np.ndarray] | None,
    featurizer: Featurizer,
    config: TaggingConfig,
    training: bool,
) -> tf.data.Dataset:
    """Batches of ({"word_ids", "char_ids", "case_ids", "context"}, tag ids) (the last two
    with the casing feature and the character LMs; features only when `ids` is None).

    Training batches are bucketed by length and shuffled, with word dropout; evaluation
    batches keep the sentences in order.
    """
    if not tokens:
        raise ValueError("no sentences to batch")

    def featurize(example):
        features = featurizer.sentence(example["tokens"])
        if "context" in example:
            features["context"] = example["context"]
        if "tags" in example:
            return features, example["tags"]
        return features

    context = featurizer.context_features(tokens) if featurizer.context is not None else None
    dataset = _sentences_dataset(tokens, ids, context).map(featurize, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if not training:
        return batching.finalize(dataset.padded_batch(config.eval_batch_size))
    dataset = batching.bucket_by_length(
        dataset,
        length_fn=lambda element: tf.shape(element[0]["word_ids"])[0],
        batch_size=config.batch_size,
        batch_type=config.batch_type,
        length_bucket_width=config.length_bucket_width,
        max_length=None if config.batch_type == "examples" else config.batch_size,
        shuffle=True,
        shuffle_buffer_size=len(tokens),
        seed=config.seed,
    )
    # Bucketing hides the number of batches from Keras; it is fixed, so count it once
    # (which also fills the cache).
    num_batches = int(dataset.reduce(np.int64(0), lambda count, _: count + 1))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
    if config.word_dropout > 0 or config.rare_word_dropout > 0:
        probabilities = tf.constant(word_dropout_probabilities(tokens, featurizer, config))
        dataset = dataset.map(lambda x, y: (word_dropout(x, probabilities), y))
    if config.steps_per_epoch > 0:
        dataset = dataset.repeat()
    return batching.finalize(dataset)


def word_dropout_probabilities(tokens: list[list[str]], featurizer: Featurizer, config: TaggingConfig) -> np.ndarray:
    """Per word id, the probability that training replaces the word by the unknown word.

    Every word: `word_dropout`. With `rare_word_dropout` alpha > 0, a word the training
    sentences `tokens` hold c times (as the word lookup sees it) is also replaced with
    probability alpha / (alpha + c) (Kiperwasser & Goldberg 2016; alpha = 1 replaces
    singletons half the time, as Lample et al. 2016 do), the two independently. Padding
    and the unknown word keep probability 0.
    """
    flat = tf.constant([token for sentence in tokens for token in sentence], tf.string)
    ids = featurizer.word_ids(flat).numpy()
    counts = np.bincount(ids, minlength=featurizer.vocabulary_size)[: featurizer.vocabulary_size]
    keep = np.full(counts.shape, 1.0 - config.word_dropout)
    if config.rare_word_dropout > 0:
        keep *= 1.0 - config.rare_word_dropout / (config.rare_word_dropout + np.maximum(counts, 1))
    probabilities = 1.0 - keep
    probabilities[: UNKNOWN_ID + 1] = 0.0
    return probabilities.astype(np.float32)


def word_dropout(features: dict[str, tf.Tensor], probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
    """Replaces each word id w by the unknown-word id with probability `probabilities[w]`,
    so the model learns to use the characters of unknown words (Lample et al. 2016)."""
    word_ids = features["word_ids"]
    drop = tf.random.uniform(tf.shape(word_ids)) < tf.gather(probabilities, word_ids)
    return {**features, "word_ids": tf.where(drop, tf.ones_like(word_ids) * UNKNOWN_ID, word_ids)}
