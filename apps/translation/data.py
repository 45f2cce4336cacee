"""Translation data: parallel text from local files or TFDS, SentencePiece vocabularies
trained on the training split, and training batches (length buckets or Morishita et al.'s
strategies, counted in examples or target tokens).

A split is a `tf.data.Dataset` of `{"source": string, "target": string}`. Training examples
become `({"source": ids, "target_in": <s> ids}, ids </s>, weights)`, padded with 0.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.translation.config import BATCH_STRATEGIES, VOCABULARY_TYPES, TranslationConfig
from pipelines import batching
from pipelines.errors import DataUnavailableError
from pipelines.text_files import read_parallel_examples
from pipelines.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SentencePieceTokenizer,
    load_sentencepiece,
    save_sentencepiece,
    train_sentencepiece,
)

SOURCE_MODEL = "source.model"
TARGET_MODEL = "target.model"
SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class Vocabularies:
    """The SentencePiece model protos of both sides (equal bytes when joint)."""

    source: bytes
    target: bytes

    @property
    def joint(self) -> bool:
        return self.source == self.target

    def source_tokenizer(self, **kwargs) -> SentencePieceTokenizer:
        return SentencePieceTokenizer(self.source, **kwargs)

    def target_tokenizer(self, **kwargs) -> SentencePieceTokenizer:
        return SentencePieceTokenizer(self.target, **kwargs)

    @property
    def source_size(self) -> int:
        return self.source_tokenizer().vocabulary_size

    @property
    def target_size(self) -> int:
        return self.target_tokenizer().vocabulary_size


# --------------------------------------------------------------------------- raw splits


def _local_paths(config: TranslationConfig, split: str) -> tuple[str, str]:
    return getattr(config, f"{split}_source"), getattr(config, f"{split}_target")


def has_split(config: TranslationConfig, split: str) -> bool:
    source, target = _local_paths(config, split)
    return bool(source and target) or bool(config.tfds_name and not config.train_source)


def read_split_examples(config: TranslationConfig, split: str) -> tuple[list[str], list[str]]:
    """The (sources, targets) sentences of a split, as Python lists."""
    source_path, target_path = _local_paths(config, split)
    if source_path or target_path:
        if not (source_path and target_path):
            raise ValueError(
                f"--{split}-source and --{split}-target go together: give both parallel files "
                f"(got source={source_path!r}, target={target_path!r})"
            )
        sources, targets = read_parallel_examples(source_path, target_path)
    elif config.tfds_name and not config.train_source:
        sources, targets = _read_tfds(config, split)
    elif split == "train":
        raise ValueError(
            "no training data: give --train-source/--train-target (parallel plain-text "
            "files, one sentence a line, line i of one translating line i of the other) or "
            "--tfds-name (e.g. wmt14_translate/de-en with --source-language en "
            "--target-language de)"
        )
    else:
        return [], []
    if split == "train" and config.max_train_examples > 0:
        sources, targets = sources[: config.max_train_examples], targets[: config.max_train_examples]
    if config.lowercase:
        sources, targets = [s.lower() for s in sources], [t.lower() for t in targets]
    return sources, targets


def _read_tfds(config: TranslationConfig, split: str) -> tuple[list[str], list[str]]:
    import tensorflow_datasets as tfds

    from pipelines.tfds_source import load_tfds

    pair = (config.source_language, config.target_language)
    try:
        keys = tuple(tfds.builder(config.tfds_name, data_dir=config.tfds_data_dir or None).info.supervised_keys or ())
    except Exception:  # unknown name: load_tfds below raises the clear error
        keys = pair
    if pair not in (keys, keys[::-1]):
        raise ValueError(
            f"TFDS {config.tfds_name} translates between {keys}; set --source-language and "
            f"--target-language to those (got {pair})"
        )
    try:
        dataset = load_tfds(
            config.tfds_name,
            getattr(config, f"tfds_{split}_split"),
            data_dir=config.tfds_data_dir or None,
            reverse_translation=pair != keys,
        )
    except DataUnavailableError as error:
        raise DataUnavailableError(
            f"{error}\n- For this app: --train-source/--train-target and "
            "--valid-source/--valid-target take parallel text files (one sentence a line)."
        ) from error
    if split == "train" and config.max_train_examples > 0:
        dataset = dataset.take(config.max_train_examples)
    sources, targets = [], []
    for example in dataset.as_numpy_iterator():
        sources.append(example["source"].decode("utf-8"))
        targets.append(example["target"].decode("utf-8"))
    return sources, targets


# --------------------------------------------------------------------------- vocabularies


def build_vocabularies(
    config: TranslationConfig, sources: list[str], targets: list[str], vocab_dir: Path
) -> Vocabularies:
    """Trains SentencePiece on the training sentences (joint or one model a side) and saves
    the models into `vocab_dir`; an existing pair there is reused (resumed runs)."""
    if config.vocabulary not in VOCABULARY_TYPES:
        raise ValueError(f"--vocabulary must be one of {VOCABULARY_TYPES}, got {config.vocabulary!r}")
    if (vocab_dir / SOURCE_MODEL).exists() and (vocab_dir / TARGET_MODEL).exists():
        return load_vocabularies(vocab_dir)

    def train(sentences: list[str]) -> bytes:
        return train_sentencepiece(
            sentences,
            vocab_size=config.vocab_size,
            model_type=config.sentencepiece_model_type,
            # 0: every sentence (SentencePiece refuses a sample of 1-100 sentences).
            input_sentence_size=(0 if len(sentences) <= config.sentencepiece_input_sentences
                                 else config.sentencepiece_input_sentences),
            seed=config.seed,
            hard_vocab_limit=False,  # tiny corpora get a smaller vocabulary, not an error
        )

    if config.vocabulary == "joint":
        source = target = train(sources + targets)
    else:
        source, target = train(sources), train(targets)
    save_sentencepiece(source, str(vocab_dir), SOURCE_MODEL)
    save_sentencepiece(target, str(vocab_dir), TARGET_MODEL)
    vocabularies = Vocabularies(source, target)
    logging.info(
        "SentencePiece (%s, %s): source %d pieces, target %d pieces, in %s",
        config.vocabulary,
        config.sentencepiece_model_type,
        vocabularies.source_size,
        vocabularies.target_size,
        vocab_dir,
    )
    return vocabularies


def load_vocabularies(vocab_dir: Path) -> Vocabularies:
    return Vocabularies(
        load_sentencepiece(str(vocab_dir), SOURCE_MODEL),
        load_sentencepiece(str(vocab_dir), TARGET_MODEL),
    )


# --------------------------------------------------------------------------- examples


def tokenize_pairs(
    sources: list[str], targets: list[str], vocabularies: Vocabularies
) -> tf.data.Dataset:
    """Token ids of each pair: `{"source": [S], "target_in": [T+1], "target_out": [T+1]}`
    with `target_in = <s> y` and `target_out = y </s>` (int32, unpadded).

    Build pipelines after any `keras.utils.set_random_seed`: setting the seed clears
    TensorFlow's kernel cache, which drops the SentencePiece resources of pipelines built
    before it ("Resource ... SentencepieceOp ... does not exist")."""
    source_tokenizer = vocabularies.source_tokenizer(dense=False)
    target_tokenizer = vocabularies.target_tokenizer(dense=False)
    strings = tf.data.Dataset.from_tensor_slices(
        {"source": np.array(sources, dtype=object), "target": np.array(targets, dtype=object)}
    )

    def tokenize(batch):
        source = source_tokenizer(batch["source"])
        target = target_tokenizer(batch["target"])
        rows = target.nrows()
        bos = tf.fill([rows, 1], tf.constant(BOS_ID, target.dtype))
        eos = tf.fill([rows, 1], tf.constant(EOS_ID, target.dtype))
        return {
            "source": source,
            "target_in": tf.concat([bos, target], axis=1),
            "target_out": tf.concat([target, eos], axis=1),
        }

    # Unbatched ragged rows come out as ragged specs of ragged_rank 0; `identity` makes
    # them plain tensors, which `padded_batch` requires.
    return (
        strings.batch(1024)
        .map(tokenize)
        .unbatch()
        .map(lambda example: tf.nest.map_structure(tf.identity, example))
    )


def _lengths(example):
    return tf.shape(example["source"])[0], tf.shape(example["target_out"])[0]


def _to_model_inputs(batch):
    target_out = batch["target_out"]
    weights = tf.cast(tf.not_equal(target_out, PAD_ID), tf.float32)
    return {"source": batch["source"], "target_in": batch["target_in"]}, target_out, weights


def make_batches(
    examples: tf.data.Dataset, config: TranslationConfig, training: bool
) -> tf.data.Dataset:
    """Padded batches for `fit`/`evaluate`: `(inputs, target_out, weights)`.

    Training pairs longer than `maximum_features_length` / `maximum_labels_length` are
    dropped; batches follow `batch_strategy` and `batch_type`."""
    if config.batch_strategy not in BATCH_STRATEGIES:
        raise ValueError(
            f"--batch-strategy must be one of {BATCH_STRATEGIES}, got {config.batch_strategy!r}"
        )
    if training:
        max_source, max_target = config.maximum_features_length, config.maximum_labels_length
        examples = examples.filter(
            lambda example: tf.logical_and(
                tf.shape(example["source"])[0] <= max_source,
                tf.shape(example["target_out"])[0] <= max_target,
            )
        )
    examples = examples.cache()
    if training:
        examples = examples.repeat() if config.steps_per_epoch else examples
    if config.batch_type == "tokens":
        longest = max(config.maximum_features_length, config.maximum_labels_length)
        if config.batch_size < longest:
            raise ValueError(
                f"--batch-size {config.batch_size} tokens is below the longest allowed "
                f"example ({longest} tokens); raise it or lower --maximum-*-length"
            )
    if config.batch_strategy == "bucket" or not training:
        batches = batching.bucket_by_length(
            examples,
            length_fn=_lengths,
            batch_size=config.batch_size,
            batch_type=config.batch_type,
            length_bucket_width=max(1, config.length_bucket_width),
            shuffle=training,
            shuffle_buffer_size=config.shuffle_buffer_size,
            seed=config.seed if training else None,
        )
    else:
        batches = batching.morishita_batches(
            examples,
            strategy=config.batch_strategy,
            batch_size=config.batch_size,
            batch_type=config.batch_type,
            length_fn=_lengths,
            sort_window_size=config.shuffle_buffer_size,
            seed=config.seed,
        )
    return batching.finalize(batches.map(_to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE))
