import json

import numpy as np
import pytest
import tensorflow as tf

from pipelines import captions, music
from pipelines.errors import DataFormatError


@pytest.fixture
def coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name, colour in (("1.png", 200), ("2.jpg", 50)):
        pixels = np.full((6, 8, 3), colour, np.uint8)
        encoded = tf.io.encode_png(pixels) if name.endswith("png") else tf.io.encode_jpeg(pixels)
        (images / name).write_bytes(encoded.numpy())
    data = {
        "images": [
            {"id": 1, "file_name": "1.png"},
            {"id": 2, "file_name": "2.jpg"},
            {"id": 3, "file_name": "2.jpg"},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "A bright square ."},
            {"id": 11, "image_id": 1, "caption": " Light grey . "},
            {"id": 20, "image_id": 2, "caption": "A dark picture"},
        ],
    }
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(data, indent=1))
    return path, images, data


def test_coco_captions_per_caption_and_grouped(coco):
    path, images, _ = coco
    rows = list(captions.read_coco_captions(str(path), str(images)).as_numpy_iterator())
    assert [(r["image_id"], r["caption"].decode()) for r in rows] == [
        (1, "A bright square ."),
        (1, "Light grey ."),
        (2, "A dark picture"),
    ]  # image 3 has no caption: dropped
    grouped = list(
        captions.read_coco_captions(str(path), str(images), group_by_image=True).as_numpy_iterator()
    )
    assert [list(g["captions"]) for g in grouped] == [
        [b"A bright square .", b"Light grey ."],
        [b"A dark picture"],
    ]
    image = captions.load_image(rows[0]["image_path"])
    assert image.shape == (6, 8, 3) and image.dtype == tf.uint8 and int(image[0, 0, 0]) == 200
    resized = captions.load_image(tf.constant(rows[2]["image_path"]), (4, 4))
    assert resized.shape == (4, 4, 3) and resized.dtype == tf.float32


def test_coco_errors(coco, tmp_path):
    path, images, data = coco
    (images / "2.jpg").unlink()
    with pytest.raises(
        DataFormatError,
        match=r"captions\.json: images\[1\] \(id 2\): image file .*2\.jpg is missing",
    ):
        captions.read_coco_captions(str(path), str(images))
    data["annotations"].append({"image_id": 99, "caption": "x"})
    data["images"] = data["images"][:1]
    path.write_text(json.dumps(data))
    with pytest.raises(
        DataFormatError, match=r"annotations\[2\] refers to image id 2, which is not listed"
    ):
        captions.read_coco_captions(str(path), str(images))
    path.write_text('{"images": [],\n "annotations": [,]}')
    with pytest.raises(DataFormatError, match=r"captions\.json:2: invalid JSON"):
        captions.read_coco_captions(str(path), str(images))
    path.write_text('{"images": []}')
    with pytest.raises(DataFormatError, match='"annotations"'):
        captions.read_coco_captions(str(path), str(images))
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        path.write_text('{"images": [], "annotations": []}')
        captions.read_coco_captions(str(path), str(tmp_path / "nowhere"))


def test_jsb_piano_rolls(tmp_path):
    path = tmp_path / "jsb.json"
    path.write_text(json.dumps({"train": [[[60, 64, 67], [], [21, 108]]], "valid": [[[62]]]}))
    splits = music.read_jsb(str(path))
    roll = splits["train"][0]
    assert roll.shape == (3, 88) and roll.dtype == np.float32
    assert set(np.flatnonzero(roll[0])) == {39, 43, 46}
    assert roll[1].sum() == 0 and roll[2, 0] == 1 and roll[2, 87] == 1
    pairs = list(music.next_frame_dataset(splits["train"]).as_numpy_iterator())
    assert len(pairs) == 1
    np.testing.assert_array_equal(pairs[0][0], roll[:-1])
    np.testing.assert_array_equal(pairs[0][1], roll[1:])


@pytest.mark.parametrize(
    "content, pattern",
    [
        ({"train": [[[20]]]}, r"train\[0\]\[0\]: pitch 20 is not a MIDI note in 21\.\.108"),
        ({"train": [[[60.5]]]}, r"pitch 60\.5"),
        ({"train": [[]]}, r"train\[0\] is not a non-empty list"),
        ({"train": {"a": 1}}, r"split 'train' is not a list"),
        ([1, 2], r"expected an object of splits"),
    ],
)
def test_jsb_errors(tmp_path, content, pattern):
    path = tmp_path / "jsb.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataFormatError, match=pattern):
        music.read_jsb(str(path))


# ----------------------------------------------------------------------------- found by the fault campaign


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda data: data.update(images=5), 'lists "images" and "annotations"'),
        (lambda data: data["images"][0].update(file_name=7), r'images\[0\]: "id" must be'),
        (lambda data: data["images"][0].update(id=[1, 2]), r'images\[0\]: "id" must be'),
        (lambda data: data["annotations"][0].update(image_id=[1]), r"annotations\[0\] refers to image id"),
    ],
)
def test_coco_values_of_the_wrong_type_are_one_clear_error(coco, edit, pattern):
    path, images, data = coco
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=pattern):
        captions.read_coco_caption_records(str(path), str(images))


@pytest.mark.parametrize("reader", ["captions", "jsb"])
def test_json_nested_too_deeply_or_a_bom_is_handled(tmp_path, reader):
    path = tmp_path / "data.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    read = (lambda p: captions.read_coco_caption_records(p, str(tmp_path))) if reader == "captions" else music.read_jsb
    with pytest.raises(DataFormatError, match="data.json: JSON nested too deeply"):
        read(str(path))
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"train": [[[60]]]}).encode())
    if reader == "jsb":
        assert music.read_jsb(str(path))["train"][0].shape == (1, 88)
