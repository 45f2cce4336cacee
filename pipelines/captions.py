"""COCO-format caption files plus an image folder, and image decoding for encoders.

Images reach an encoder one way everywhere: decoded (JPEG, PNG, BMP, GIF; grayscale and
RGBA become RGB), resized to a square with antialiasing and rounded to uint8
(`resize_image`). Training reads files with `read_image_file` (errors name the file);
serving decodes a batch of encoded images in the graph with `decode_image_batch`, where a
corrupt image is flagged rather than failing the batch.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from pipelines._io import parse_json, read_text_file
from pipelines.errors import DataFormatError

#: Images smaller than this on either side are refused as training data.
MIN_IMAGE_SIDE = 8


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


def resize_image(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """uint8 (or float) `[H, W, 3]` (or a batch) -> uint8 `[image_size, image_size, 3]`:
    bilinear with antialiasing, the aspect ratio not kept, rounded to integers, so that
    training from stored images and serving from bytes see the same pixels."""
    resized = tf.image.resize(image, [image_size, image_size], antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def read_image_file(path: str, image_size: int | None = None) -> np.ndarray:
    """One image file as uint8 `[H, W, 3]` (resized with `resize_image` when `image_size`
    is given). Errors name the file: FileNotFoundError when it is missing,
    `DataFormatError` when it is not a decodable image or smaller than
    `MIN_IMAGE_SIDE` pixels on a side."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no such image file")
    with tf.io.gfile.GFile(path, "rb") as handle:
        data = handle.read()
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        reason = str(error).strip().splitlines()[-1][:200] if str(error).strip() else "corrupt"
        raise DataFormatError(
            path, None, f"not a decodable JPEG/PNG/BMP/GIF image ({reason})"
        ) from error
    height, width = int(image.shape[0]), int(image.shape[1])
    if min(height, width) < MIN_IMAGE_SIDE:
        raise DataFormatError(
            path, None, f"image is {width}x{height} pixels; at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed"
        )
    if image_size is None:
        return image.numpy()
    return resize_image(image, image_size).numpy()


def decode_image_batch(encoded: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """In-graph decoding of a batch of encoded images of any size and format (JPEG, PNG,
    BMP, GIF; grayscale, RGB, RGBA).

    Args:
        encoded: string `[N]`, the file contents.
        image_size: side of the square output.

    Returns:
        `(images uint8 [N, image_size, image_size, 3], valid bool [N])`: an element that
        cannot be decoded gets a black image and `valid` False; the batch never fails.
    """
    encoded = tf.convert_to_tensor(encoded, tf.string)
    count = tf.shape(encoded)[0]

    def decode(index, data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return index, resize_image(image, image_size)

    # tf.data's ignore_errors drops the elements whose decoding fails; their indices are
    # then missing from the collected results.
    decoded = (
        tf.data.Dataset.from_tensor_slices((tf.range(count), encoded))
        .map(decode)
        .ignore_errors()
        .batch(1 << 30)
    )
    empty = (tf.zeros([0], tf.int32), tf.zeros([0, image_size, image_size, 3], tf.uint8))
    indices, images = decoded.reduce(
        empty,
        lambda collected, batch: (
            tf.concat([collected[0], batch[0]], 0),
            tf.concat([collected[1], batch[1]], 0),
        ),
    )
    positions = indices[:, None]
    valid = tf.scatter_nd(positions, tf.ones_like(indices), [count]) > 0
    shape = tf.stack([count, image_size, image_size, 3])
    return tf.scatter_nd(positions, images, shape), valid
