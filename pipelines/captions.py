"""COCO-format caption files plus an image folder, and image decoding for encoders."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from pipelines._io import parse_json, read_text_file
from pipelines.errors import DataFormatError


def read_coco_caption_records(json_path: str, image_dir: str) -> list[dict]:
    """Parses a COCO captions JSON into ``[{"image_id", "image_path", "captions"}]``.

    Every image listed under ``images`` must exist in ``image_dir`` and every annotation
    must refer to a listed image; images without any caption are dropped.
    """
    data = parse_json(json_path, read_text_file(json_path))
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        raise DataFormatError(
            json_path, None, 'expected a COCO captions object with lists "images" and "annotations"'
        )
    if not tf.io.gfile.isdir(image_dir):
        raise FileNotFoundError(f"{image_dir}: image folder not found (for {json_path})")
    images: dict[int, dict] = {}
    for position, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DataFormatError(json_path, None, f'images[{position}] lacks "id" or "file_name"')
        if not isinstance(image["id"], (int, str)) or not isinstance(image["file_name"], str):
            raise DataFormatError(
                json_path, None, f'images[{position}]: "id" must be a number or a string and '
                '"file_name" a string')
        image_path = os.path.join(image_dir, image["file_name"])
        if not tf.io.gfile.exists(image_path):
            raise DataFormatError(
                json_path,
                None,
                f"images[{position}] (id {image['id']}): image file {image_path} is missing",
            )
        images[image["id"]] = {"image_id": image["id"], "image_path": image_path, "captions": []}
    for position, annotation in enumerate(data["annotations"]):
        if (
            not isinstance(annotation, dict)
            or "image_id" not in annotation
            or "caption" not in annotation
        ):
            raise DataFormatError(
                json_path, None, f'annotations[{position}] lacks "image_id" or "caption"'
            )
        if not isinstance(annotation["image_id"], (int, str)) or annotation["image_id"] not in images:
            raise DataFormatError(
                json_path,
                None,
                f"annotations[{position}] refers to image id {annotation['image_id']}, "
                'which is not listed under "images"',
            )
        caption = annotation["caption"]
        if not isinstance(caption, str) or not caption.strip():
            raise DataFormatError(json_path, None, f"annotations[{position}] has an empty caption")
        images[annotation["image_id"]]["captions"].append(caption.strip())
    records = [record for record in images.values() if record["captions"]]
    if not records:
        raise DataFormatError(json_path, None, "no captioned images")
    return records


def read_coco_captions(
    json_path: str, image_dir: str, group_by_image: bool = False
) -> tf.data.Dataset:
    """Reads COCO-format captions (e.g. Flickr8k/COCO) whose images live in ``image_dir``.

    Args:
        group_by_image: False gives one example per caption (for training); True one per
            image with all its captions (references for BLEU).

    Returns:
        ``{"image_path": string, "image_id": int64, "caption": string}`` per caption, or
        ``{"image_path", "image_id", "captions": string [num_captions]}`` per image.
        Decode images with :func:`load_image`.
    """
    records = read_coco_caption_records(json_path, image_dir)
    if group_by_image:
        lengths = np.array([len(r["captions"]) for r in records], dtype=np.int64)
        flat = np.array([c for r in records for c in r["captions"]], dtype=object)
        dataset = tf.data.Dataset.from_tensor_slices(
            {
                "image_path": np.array([r["image_path"] for r in records], dtype=object),
                "image_id": np.array([r["image_id"] for r in records], dtype=np.int64),
                "captions": tf.RaggedTensor.from_row_lengths(flat, lengths),
            }
        )
        return dataset.map(
            lambda e: (
                {**e, "captions": e["captions"].flat_values}
                if isinstance(e["captions"], tf.RaggedTensor)
                else e
            )
        )
    rows = [(r["image_path"], r["image_id"], c) for r in records for c in r["captions"]]
    return tf.data.Dataset.from_tensor_slices(
        {
            "image_path": np.array([row[0] for row in rows], dtype=object),
            "image_id": np.array([row[1] for row in rows], dtype=np.int64),
            "caption": np.array([row[2] for row in rows], dtype=object),
        }
    )


def load_image(image_path: tf.Tensor, image_size: tuple[int, int] | None = None) -> tf.Tensor:
    """Reads and decodes a JPEG/PNG/BMP/GIF file in the graph: uint8 ``[H, W, 3]``.

    With ``image_size`` the image is resized (bilinear) and returned as float32 in [0, 255],
    the input range ``keras.applications`` preprocessors expect.
    """
    image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
    if image_size is None:
        return image
    return tf.image.resize(image, image_size)
