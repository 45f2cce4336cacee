"""Captioning data: splits of images with their reference captions, stored once as
resized uint8 arrays in RUN_DIR/cache, and training batches of (image or cached encoder
features, caption) bucketed by caption length.

Sources (`--dataset`): COCO-format JSON plus an image folder (`pipelines.captions`), the
TFDS `coco_captions` set (Karpathy splits), or the procedural rendered-shapes captions
(`pipelines.procedural`), deterministic by seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.captioning.config import CaptioningConfig
from apps.captioning.text import CaptionText
from pipelines import batching
from pipelines.captions import read_coco_caption_records, read_image_file, resize_image
from pipelines.errors import DataUnavailableError
from pipelines.procedural import rendered_shapes_captions
from pipelines.tokenizers import BOS_ID, EOS_ID, PAD_ID

logger = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class CaptionSplit:
    """One split: image ids, all reference captions of each image, and the images as
    uint8 `[N, S, S, 3]` (a read-only memory map of the run's cache)."""

    name: str  # what the split was read from, as evaluation records name it
    key: str  # digest of the source and image size: names the split's cached files
    image_ids: list
    references: list[list[str]]
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.image_ids)


# --------------------------------------------------------------------------- sources


def data_name(config: CaptioningConfig, split: str) -> str:
    dataset = config.resolved_dataset()
    if dataset == "shapes":
        count = getattr(config, f"shapes_{split}_images")
        return f"shapes seed {config.shapes_seed + SPLITS.index(split)} ({count} images)"
    if dataset == "coco_captions":
        return f"TFDS coco_captions/{getattr(config, f'tfds_{split}_split')}"
    return getattr(config, f"{split}_json")


def has_split(config: CaptioningConfig, split: str) -> bool:
    return config.resolved_dataset() != "coco_json" or bool(getattr(config, f"{split}_json"))


def _limit(config: CaptioningConfig, split: str) -> int:
    return config.max_train_images if split == "train" else config.max_valid_images


def _source_key(config: CaptioningConfig, split: str) -> dict:
    """What decides a split's stored images: a change of any of these rebuilds them."""
    key = {"name": data_name(config, split), "size": config.image_size, "limit": _limit(config, split)}
    if config.resolved_dataset() == "shapes":
        key["max_shapes"] = config.shapes_max_shapes
    if config.resolved_dataset() == "coco_json":
        path = getattr(config, f"{split}_json")
        key.update(image_dir=_image_dir(config, split), json_bytes=os.path.getsize(path),
                   json_mtime=os.path.getmtime(path))
    return key


def _image_dir(config: CaptioningConfig, split: str) -> str:
    return getattr(config, f"{split}_image_dir", "") or config.image_dir


def _records(config: CaptioningConfig, split: str) -> tuple[list, list[list[str]], int, Iterator[np.ndarray]]:
    """(image ids, references, count, an iterator of uint8 images resized) of a split."""
    dataset, size, limit = config.resolved_dataset(), config.image_size, _limit(config, split)
    if dataset == "coco_json":
        records = read_coco_caption_records(getattr(config, f"{split}_json"), _image_dir(config, split))
        records = records[:limit] if limit else records
        images = (read_image_file(record["image_path"], size) for record in records)
        return ([r["image_id"] for r in records], [r["captions"] for r in records],
                len(records), images)
    if dataset == "shapes":
        count = getattr(config, f"shapes_{split}_images")
        count = min(count, limit) if limit else count
        examples = rendered_shapes_captions(count, image_size=size,
                                            max_shapes=config.shapes_max_shapes,
                                            seed=config.shapes_seed + SPLITS.index(split))
        captions = [[e["caption"].decode("utf-8")] for e in examples.map(lambda e: {"caption": e["caption"]}).as_numpy_iterator()]
        images = (e["image"] for e in examples.as_numpy_iterator())
        return list(range(count)), captions, count, images
    return _tfds_records(config, split)


def _tfds_records(config: CaptioningConfig, split: str):
    from pipelines.tfds_source import load_tfds

    try:
        dataset = load_tfds("coco_captions", getattr(config, f"tfds_{split}_split"),
                            data_dir=config.tfds_data_dir or None)
    except DataUnavailableError as error:
        raise DataUnavailableError(
            f"{error}\n- For this app: --dataset coco_json --train-json FILE --valid-json FILE "
            "--image-dir DIR read COCO-format caption files and their images."
        ) from error
    limit = _limit(config, split)
    if limit:
        dataset = dataset.take(limit)
    size = config.image_size
    dataset = dataset.map(lambda e: {**e, "image": resize_image(e["image"], size)})
    ids, references, images = [], [], []
    for example in dataset.as_numpy_iterator():
        ids.append(int(example["image_id"]))
        references.append([c.decode("utf-8") for c in example["captions"]])
        images.append(example["image"])
    return ids, references, len(ids), iter(images)


def load_split(config: CaptioningConfig, split: str, cache_dir: Path) -> CaptionSplit | None:
    """A split's images and captions, its images decoded and resized once into
    `cache_dir` (reused while the source and size are unchanged); None when the
    configuration has no such split."""
    if not has_split(config, split):
        return None
    key = _source_key(config, split)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    cache_dir.mkdir(parents=True, exist_ok=True)
    images_path, records_path = cache_dir / f"images-{split}-{digest}.npy", cache_dir / f"images-{split}-{digest}.json"
    if not (images_path.exists() and records_path.exists()):
        ids, references, count, images = _records(config, split)
        temporary = images_path.with_suffix(".tmp.npy")
        size = config.image_size
        stored = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
        try:
            for index, image in enumerate(images):
                stored[index] = image
            stored.flush()
        except BaseException:
            del stored
            temporary.unlink()  # a bad image leaves no half-written store behind
            raise
        del stored
        os.replace(temporary, images_path)
        records_path.write_text(json.dumps({"source": key, "image_ids": ids, "references": references}), encoding="utf-8")
        logger.info("%s: %d images stored in %s", split, count, images_path)
    records = json.loads(records_path.read_text(encoding="utf-8"))
    return CaptionSplit(key["name"], f"{split}-{digest}", records["image_ids"], records["references"], np.load(images_path, mmap_mode="r"))


# --------------------------------------------------------------------------- batches


def caption_examples(split: CaptionSplit, text: CaptionText, max_length: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """One example per reference caption: (image index [M], caption ids [M] without
    <start>/<end>)."""
    indices, captions = [], []
    for index, references in enumerate(split.references):
        for caption in references:
            indices.append(index)
            captions.append(text.encode(caption, max_length))
    return np.asarray(indices, np.int32), captions


def make_batches(
    indices: np.ndarray,
    captions: list[np.ndarray],
    inputs: np.ndarray,
    input_key: str,
    config: CaptioningConfig,
    training: bool,
) -> tf.data.Dataset:
    """`({input_key: inputs[i], "caption_in": <start> ids}, ids <end>, weights)` batches,
    bucketed by caption length (`pipelines.batching`), shuffled for training; `inputs`
    (images or cached features, any array indexable by example) is gathered per batch."""
    lengths = np.array([len(caption) for caption in captions], np.int32)
    flat = np.concatenate(captions) if captions else np.zeros([0], np.int32)
    ragged = tf.RaggedTensor.from_row_lengths(flat, lengths)
    examples = tf.data.Dataset.from_tensor_slices({"index": indices, "caption": ragged})

    def wrap(example):
        caption = tf.cast(example["caption"], tf.int32)
        return {
            "index": example["index"],
            "caption_in": tf.concat([[BOS_ID], caption], 0),
            "caption_out": tf.concat([caption, [EOS_ID]], 0),
        }

    examples = examples.map(wrap)
    if training and config.steps_per_epoch:
        examples = examples.repeat()
    batches = batching.bucket_by_length(
        examples,
        length_fn=lambda example: tf.shape(example["caption_out"])[0],
        batch_size=config.batch_size,
        length_bucket_width=config.length_bucket_width,
        shuffle=training,
        shuffle_buffer_size=config.shuffle_buffer_size,
        seed=config.seed if training else None,
    )
    dtype = tf.as_dtype(inputs.dtype)
    item_shape = inputs.shape[1:]

    def gather(batch):
        rows = tf.numpy_function(lambda index: np.asarray(inputs[np.sort(index)][np.argsort(np.argsort(index))]),
                                 [batch["index"]], dtype, stateful=False)
        rows = tf.ensure_shape(rows, [None, *item_shape])
        target = batch["caption_out"]
        weights = tf.cast(tf.not_equal(target, PAD_ID), tf.float32)
        return {input_key: rows, "caption_in": batch["caption_in"]}, target, weights

    return batching.finalize(batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE))
