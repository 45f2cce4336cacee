"""The language model's data: texts of the splits, their token ids and the batch streams."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import tensorflow as tf

from apps.language_model.config import LanguageModelConfig
from apps.language_model.tokens import TextTokenizer
from pipelines.errors import DataFormatError, DataUnavailableError
from pipelines.streams import independent_windows, stream_layout, stream_windows
from pipelines.text_files import read_text

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
_TFDS_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


def load_texts(config: LanguageModelConfig) -> dict[str, str]:
    """The text of each available split: ``train`` and ``valid`` always, ``test`` when
    there is one. Local files win over TFDS; ``--test-file`` is the test split of either
    kind of local text (it replaces the held-out test part of a ``--text-file``)."""
    if config.train_file:
        if config.text_file:
            raise ValueError("give either --train-file (+ --valid-file) or --text-file, not both")
        texts = {"train": read_text(config.train_file)}
        if config.valid_file:
            texts["valid"] = read_text(config.valid_file)
        else:
            texts.update(split_text(texts["train"], config.valid_fraction, 0.0, config.train_file))
    elif config.text_file:
        if config.valid_file:
            raise ValueError("--valid-file needs --train-file (a --text-file holds out its own)")
        text = read_text(config.text_file)
        texts = split_text(text, config.valid_fraction, config.test_fraction, config.text_file)
    elif config.valid_file or config.test_file:
        raise ValueError("--valid-file and --test-file need --train-file or --text-file")
    else:
        return _load_tfds(config)
    if config.test_file:
        texts["test"] = read_text(config.test_file)
    return texts


def split_text(
    text: str, valid_fraction: float, test_fraction: float, source: str
) -> dict[str, str]:
    """First ``1 - valid - test`` of the characters for training, then validation, then
    test (nanoGPT's split of Tiny Shakespeare: character 1,003,854 of 1,115,394 at 10%)."""
    if valid_fraction <= 0:
        raise ValueError(
            f"{source}: one text needs --valid-fraction > 0 to hold out validation text"
        )
    n = len(text)
    train_end = int(n * (1.0 - valid_fraction - test_fraction))
    valid_end = int(n * (1.0 - test_fraction))
    texts = {"train": text[:train_end], "valid": text[train_end:valid_end]}
    if test_fraction > 0:
        texts["test"] = text[valid_end:]
    for name, part in texts.items():
        if len(part) < 2:
            raise DataFormatError(
                source, None, f"the {name} part holds {len(part)} characters; the text is too short"
            )
    return texts


def _load_tfds(config: LanguageModelConfig) -> dict[str, str]:
    from pipelines.tfds_source import load_tfds

    texts = {}
    for split, tfds_split in _TFDS_SPLITS.items():
        try:
            dataset = load_tfds(config.tfds_name, tfds_split, data_dir=config.tfds_data_dir or None)
        except DataUnavailableError as error:
            raise DataUnavailableError(
                f"{error}\n- For this app: python -m apps.language_model train --text-file "
                "input.txt (one text; the last --valid-fraction is held out), or --train-file "
                "ptb.train.txt --valid-file ptb.valid.txt"
            ) from error
        except ValueError:  # no such split
            if split == "test":
                continue
            raise
        pieces = [element["text"].numpy().decode("utf-8") for element in dataset]
        texts[split] = "\n".join(pieces)
    return texts


@dataclasses.dataclass
class TokenSplits:
    """Token ids of each split, with the character count of its text."""

    ids: dict[str, np.ndarray]
    num_chars: dict[str, int]


def encode_splits(
    tokenizer: TextTokenizer, texts: dict[str, str], max_train_tokens: int = 0
) -> TokenSplits:
    ids, num_chars = {}, {}
    for split, text in texts.items():
        ids[split] = tokenizer.encode(text)
        num_chars[split] = len(text)
        if split == "train" and max_train_tokens > 0 and len(ids[split]) > max_train_tokens:
            fraction = max_train_tokens / len(ids[split])
            ids[split] = ids[split][:max_train_tokens]
            num_chars[split] = int(round(num_chars[split] * fraction))
        logger.info("%s: %d characters, %d tokens", split, num_chars[split], len(ids[split]))
    return TokenSplits(ids, num_chars)


def training_windows(config: LanguageModelConfig, ids: np.ndarray) -> tuple[tf.data.Dataset, int]:
    """The training batches of one pass and how many there are.

    stateful: consecutive windows of `batch_size` parallel streams, in order (repeated, so
    that `steps_per_epoch` may cut passes into shorter epochs); stateless: independent
    shuffled windows.
    """
    if config.training_mode == "stateful":
        dataset = stream_windows(ids, config.batch_size, config.bptt)
        steps = stream_layout(len(ids), config.batch_size, config.bptt).num_windows
    else:
        dataset = independent_windows(ids, config.batch_size, config.bptt, seed=config.seed)
        steps = ((len(ids) - 1) // config.bptt) // config.batch_size
    return dataset.repeat().prefetch(tf.data.AUTOTUNE), steps


def validation_windows(config: LanguageModelConfig, ids: np.ndarray) -> tf.data.Dataset:
    """Validation batches for the per-epoch `val_` metrics of `fit`: consecutive stream
    windows with the training batch size (a stateful model's batch is fixed). The exact
    whole-split figures come from `evaluation.evaluate_ids`."""
    batch_size = config.batch_size
    layout_batch = batch_size
    while layout_batch > 1 and (len(ids) - 1) // layout_batch < config.bptt:
        layout_batch //= 2
    if layout_batch != batch_size and config.training_mode == "stateful":
        raise ValueError(
            f"the validation split ({len(ids)} tokens) cannot fill {batch_size} streams of "
            f"bptt={config.bptt} tokens; lower --batch-size or --bptt"
        )
    return stream_windows(ids, layout_batch, config.bptt).cache().prefetch(tf.data.AUTOTUNE)
