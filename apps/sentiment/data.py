"""IMDB input pipeline: TFDS or local files, validation carved from train, in-graph
tokenisation (words or SentencePiece) and token-budget bucketed batches."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.sentiment.config import SentimentConfig
from pipelines import batching, tokenizers
from pipelines.text_files import read_classification_examples, read_classification_folder

logger = logging.getLogger(__name__)

WORDS_FILE = "words.txt"
CLASS_FOLDERS = ("neg", "pos")  # aclImdb's, in label order
LOCAL_EXTENSIONS = (".jsonl", ".json", ".csv", ".tsv", ".txt")
STANDARDIZE = "lower"  # lower-case, HTML line breaks removed; the same in training and serving


# ----------------------------------------------------------------------------- sources


def _local_split_path(data_dir: str, split: str) -> tuple[str, str]:
    """("folder" | "file", path) of `split` inside `data_dir`."""
    root = Path(data_dir)
    if not root.exists():
        raise FileNotFoundError(f"--data-dir {data_dir}: no such folder")
    for folder in (root / split, root / "aclImdb" / split):
        if folder.is_dir():
            return "folder", str(folder.parent)
    for extension in LOCAL_EXTENSIONS:
        for suffix in ("", ".gz"):
            path = root / f"{split}{extension}{suffix}"
            if path.is_file():
                return "file", str(path)
    raise FileNotFoundError(
        f"--data-dir {data_dir}: found no {split!r} split; expected an aclImdb-style folder "
        f"{root / split}/{{neg,pos}}/*.txt or a file {split}.jsonl / {split}.csv / "
        f"{split}.tsv (optionally .gz) with a label and a text column"
    )


def _dataset_to_arrays(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    texts, labels = [], []
    for batch in dataset.batch(4096).as_numpy_iterator():
        texts.extend(batch["text"].tolist())
        labels.extend(batch["label"].tolist())
    return np.array(texts, dtype=object), np.array(labels, dtype=np.int64)


def load_split(config: SentimentConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All (texts, labels) of `split` ("train" or "test") as arrays: texts are UTF-8 bytes
    or str, labels 0 (negative) / 1 (positive). The test split is `--test-file` when given."""
    if split == "test" and config.test_file:
        kind, path = "file", config.test_file
    elif config.data_dir:
        kind, path = _local_split_path(config.data_dir, split)
    else:
        kind, path = "tfds", ""
    if kind != "tfds":
        if kind == "folder":
            # Named: a folder missing pos/ must not make neg/ label 1 (nor pos/ label 0).
            folder = read_classification_folder(path, split=split, class_names=CLASS_FOLDERS)
            texts, labels = _dataset_to_arrays(folder)
        else:
            text_list, label_list, names = read_classification_examples(path, num_classes=2)
            if names is not None:
                logger.info("%s: labels %s", path, dict(zip(names, range(len(names)))))
            texts = np.array(text_list, dtype=object)
            labels = np.array(label_list, dtype=np.int64)
        source = path
    else:
        from pipelines.tfds_source import load_tfds

        dataset = load_tfds(config.tfds_name, split, data_dir=config.tfds_data_dir or None)
        texts, labels = _dataset_to_arrays(dataset)
        source = f"TFDS {config.tfds_name}/{split}"
    bad = sorted(set(np.unique(labels).tolist()) - {0, 1})
    if bad:
        raise ValueError(f"{source}: labels must be 0 (negative) or 1 (positive), found {bad}")
    if split == "train" and len(np.unique(labels)) < 2:
        only = "none" if not len(labels) else f"only label {int(labels[0])}"
        raise ValueError(f"{source}: the training reviews have {only}; a classifier needs "
                         "examples of both labels (0 negative, 1 positive)")
    limit = config.max_train_examples if split == "train" else config.max_test_examples
    if limit and limit < len(texts):
        order = np.random.default_rng(config.seed + 17).permutation(len(texts))[:limit]
        texts, labels = texts[order], labels[order]
    logger.info("%s: %d examples (%d positive)", source, len(texts), int(labels.sum()))
    return texts, labels


def data_name(config: SentimentConfig, split: str) -> str:
    """What `split` is read from, as evaluation records name it."""
    if split == "test" and config.test_file:
        return config.test_file
    if config.data_dir:
        return f"{config.data_dir} ({'train' if split == 'valid' else split})"
    return f"TFDS {config.tfds_name}/{'train' if split == 'valid' else split}"


def heldout_split(config: SentimentConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(texts, labels) of `valid` (the share of the training split held out by the run's
    seed) or `test`."""
    if split == "test":
        return load_split(config, "test")
    texts, labels = load_split(config, "train")
    _, validation = train_validation_split(texts, labels, config.valid_fraction, config.seed)
    if not len(validation[0]):
        raise ValueError("--split valid: this run held out no validation reviews "
                         "(--valid-fraction 0)")
    return validation


def train_validation_split(
    texts: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A seeded random `fraction` of the training examples becomes the validation set."""
    order = np.random.default_rng(seed).permutation(len(texts))
    num_validation = int(round(len(texts) * fraction))
    validation, train = order[:num_validation], order[num_validation:]
    return (texts[train], labels[train]), (texts[validation], labels[validation])


# ----------------------------------------------------------------------------- tokenisation


def sanitize(texts: tf.Tensor) -> tf.Tensor:
    """Makes any byte string valid UTF-8 (invalid bytes become U+FFFD)."""
    return tf.strings.unicode_transcode(
        texts,
        input_encoding="UTF-8",
        output_encoding="UTF-8",
        errors="replace",
        replacement_char=0xFFFD,
    )


class TextEncoder(tf.Module):
    """Raw review strings -> int32 token ids, entirely in the graph.

    Invalid UTF-8 is repaired, text is lower-cased and HTML line breaks removed, then
    split into words (looked up in the training vocabulary) or SentencePiece pieces, and
    cut to `max_length` tokens. Id 0 is padding, so the model masks it.
    """

    def __init__(self, config: SentimentConfig, vocab_dir: str | Path):
        super().__init__(name="text_encoder")
        self.kind = config.tokenizer
        self.max_length = config.max_length
        if config.tokenizer == "words":
            vocabulary = tokenizers.load_vocabulary(os.path.join(vocab_dir, WORDS_FILE))
            self.tokenizer = tokenizers.WordTokenizer(vocabulary, standardize=STANDARDIZE, dense=False)
        else:
            proto = tokenizers.load_sentencepiece(str(vocab_dir))
            self.tokenizer = tokenizers.SentencePieceTokenizer(proto, dense=False)

    @property
    def vocabulary_size(self) -> int:
        return int(self.tokenizer.vocabulary_size)

    def ragged(self, texts) -> tf.RaggedTensor:
        texts = sanitize(tf.convert_to_tensor(texts, tf.string))
        if self.kind == "sentencepiece":
            texts = tokenizers.standardize_text(texts, STANDARDIZE)
        ids = tf.cast(self.tokenizer(texts), tf.int32)
        if self.max_length > 0:
            ids = ids[:, : self.max_length]
        return ids

    def __call__(self, texts) -> tf.Tensor:
        """Dense `[batch, max(1, longest)]` ids padded with 0 (one column even when every
        text is empty, so that the model always sees a sequence)."""
        dense = self.ragged(texts).to_tensor(default_value=0)
        return tf.pad(dense, [[0, 0], [0, tf.maximum(1 - tf.shape(dense)[1], 0)]])


def build_vocabulary(config: SentimentConfig, texts: np.ndarray, vocab_dir: str | Path) -> None:
    """Trains the tokenizer on the training texts and saves it into `vocab_dir` (kept
    as is when it is already there, e.g. when a run resumes)."""
    vocab_dir = str(vocab_dir)
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string)).map(sanitize)
    if config.tokenizer == "words":
        if os.path.exists(os.path.join(vocab_dir, WORDS_FILE)):
            return
        vocabulary = tokenizers.build_word_vocabulary(
            dataset,
            max_tokens=config.vocab_size - 2,  # StringLookup adds padding and OOV ids
            min_frequency=config.min_frequency,
            standardize=STANDARDIZE,
        )
        tokenizers.save_vocabulary(vocabulary, vocab_dir, WORDS_FILE)
        logger.info("word vocabulary: %d words -> %s", len(vocabulary), vocab_dir)
    else:
        if os.path.exists(os.path.join(vocab_dir, tokenizers.SENTENCEPIECE_FILE)):
            return
        standardized = dataset.batch(1024).map(lambda t: tokenizers.standardize_text(t, STANDARDIZE))
        sentences = (
            text.decode("utf-8") for batch in standardized.as_numpy_iterator() for text in batch
        )
        proto = tokenizers.train_sentencepiece(
            sentences,
            vocab_size=config.vocab_size,
            model_type=config.sentencepiece_type,
            character_coverage=0.9999,
            seed=config.seed,
            hard_vocab_limit=False,  # tiny corpora (tests) may not support the full size
        )
        tokenizers.save_sentencepiece(proto, vocab_dir)
        logger.info("SentencePiece %s model -> %s", config.sentencepiece_type, vocab_dir)


# ----------------------------------------------------------------------------- datasets


def make_dataset(
    texts: np.ndarray,
    labels: np.ndarray,
    encoder: TextEncoder,
    config: SentimentConfig,
    training: bool,
) -> tf.data.Dataset:
    """(token ids `[batch, length]` int32, label `[batch]` float32) batches.

    Tokenisation runs once and is cached. Training batches are shuffled and bucketed by
    length (`batch_type` tokens: at most `batch_size` tokens, padding included, per
    batch); evaluation batches are bucketed too, and every example is kept exactly once.
    """
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(texts), tf.string), tf.constant(labels, tf.float32))
    )
    dataset = (
        dataset.batch(512)
        .map(lambda t, y: (encoder.ragged(t), y), num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(lambda ids, y: (_at_least_one(ids), y))
        .cache()
    )
    dataset = batching.bucket_by_length(
        dataset,
        length_fn=lambda example: tf.shape(example[0])[0],
        batch_size=config.batch_size,
        batch_type=config.batch_type,
        length_bucket_width=config.length_bucket_width,
        max_length=config.max_length or None,
        shuffle=training,
        shuffle_buffer_size=min(config.shuffle_buffer, max(len(texts), 1)),
        seed=config.seed if training else None,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _at_least_one(ids: tf.Tensor) -> tf.Tensor:
    """Empty reviews become one padding token (masked by the model)."""
    return tf.cond(tf.size(ids) > 0, lambda: ids, lambda: tf.zeros([1], tf.int32))
