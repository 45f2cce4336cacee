"""pipelines.captions image decoding: files with errors naming them, and in-graph batches
of encoded images of any size and format where a corrupt image is flagged, not fatal."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.captions import MIN_IMAGE_SIDE, decode_image_batch, read_image_file, resize_image
from pipelines.errors import DataFormatError


def _pixels(height, width, channels, value):
    return np.full((height, width, channels), value, np.uint8)


def test_read_image_file_resizes_and_names_bad_files(tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(tf.io.encode_png(_pixels(20, 30, 3, 120)).numpy())
    image = read_image_file(str(good), 16)
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8 and np.all(image == 120)
    assert read_image_file(str(good)).shape == (20, 30, 3)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(tf.io.encode_jpeg(_pixels(20, 20, 3, 9)).numpy()[:60])
    with pytest.raises(DataFormatError, match=r"corrupt\.jpg: not a decodable JPEG/PNG/BMP/GIF image"):
        read_image_file(str(corrupt), 16)
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(tf.io.encode_png(_pixels(1, 1, 3, 9)).numpy())
    with pytest.raises(DataFormatError, match=rf"tiny\.png: image is 1x1 pixels; at least {MIN_IMAGE_SIDE}x"):
        read_image_file(str(tiny), 16)
    with pytest.raises(FileNotFoundError, match=r"missing\.png: no such image file"):
        read_image_file(str(tmp_path / "missing.png"), 16)


def test_decode_image_batch_flags_corrupt_images_and_matches_file_reading(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (23, 31, 3), dtype=np.uint8)
    encoded = [
        tf.io.encode_png(rgb).numpy(),
        b"not an image",
        tf.io.encode_png(_pixels(5, 9, 1, 50)).numpy(),  # grayscale
        tf.io.encode_png(np.concatenate([rgb, _pixels(23, 31, 1, 255)], -1)).numpy(),  # RGBA
        tf.io.encode_jpeg(rgb).numpy()[:40],  # truncated
        tf.io.encode_png(_pixels(1, 1, 3, 77)).numpy(),  # any size is served
    ]
    images, valid = decode_image_batch(tf.constant(encoded), 12)
    assert images.shape == (6, 12, 12, 3) and images.dtype == tf.uint8
    np.testing.assert_array_equal(valid, [True, False, True, True, False, True])
    path = tmp_path / "rgb.png"
    path.write_bytes(encoded[0])
    np.testing.assert_array_equal(images[0], read_image_file(str(path), 12))  # same pixels
    np.testing.assert_array_equal(images[3], images[0])  # alpha dropped
    assert np.all(images[2].numpy() == 50) and np.all(images[5].numpy() == 77)
    assert np.all(images[1].numpy() == 0) and np.all(images[4].numpy() == 0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def in_graph(batch):
        return decode_image_batch(batch, 12)

    graph_images, graph_valid = in_graph(tf.constant(encoded))
    np.testing.assert_array_equal(graph_images, images)
    np.testing.assert_array_equal(graph_valid, valid)
    empty_images, empty_valid = in_graph(tf.constant([], tf.string))
    assert empty_images.shape == (0, 12, 12, 3) and empty_valid.shape == (0,)


def test_resize_image_rounds_to_uint8():
    image = tf.constant(np.linspace(0, 255, 4 * 4 * 3).reshape(4, 4, 3), tf.float32)
    resized = resize_image(image, 2)
    assert resized.dtype == tf.uint8 and resized.shape == (2, 2, 3)
