import threading

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines import tfds_source
from pipelines.errors import DataUnavailableError

NAMES = [
    "imdb_reviews",
    "conll2003",
    "universal_dependencies/en_ewt",
    "ted_hrlr_translate/pt_to_en",
    "wmt14_translate/de-en",
    "coco_captions",
    "tiny_shakespeare",
]


def _refuse_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a TFDS download or preparation was attempted")

    monkeypatch.setattr(tfds, "load", refuse)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)


def test_offline_failure_is_fast_and_helpful(tmp_path, monkeypatch):
    # An unresolvable host stands for "no network", whatever the test machine has; fast
    # means no download is ever attempted (TFDS would retry for minutes).
    monkeypatch.setattr(tfds_source, "PROBE_HOSTS", (("tfds-probe.invalid", 443),))
    _refuse_downloads(monkeypatch)
    with pytest.raises(DataUnavailableError) as error:
        tfds_source.load_tfds("imdb_reviews", "train", data_dir=str(tmp_path))
    message = str(error.value)
    assert "not prepared" in message and "cannot be reached" in message
    assert "--data-dir" in message and "read_classification" in message
    assert "prepare imdb_reviews --archives" in message
    assert isinstance(error.value, RuntimeError)


def test_download_false_fails_fast(tmp_path, monkeypatch):
    _refuse_downloads(monkeypatch)
    with pytest.raises(DataUnavailableError, match="download=False"):
        tfds_source.load_tfds("conll2003", "train", data_dir=str(tmp_path), download=False)


def test_network_probe_is_bounded(monkeypatch):
    # A connection that hangs for ever (a stuck DNS lookup) does not block the probe: it
    # answers "no network" once its bound has passed, and asked the socket for that bound.
    asked, hang = [], threading.Event()

    def hanging_connection(address, timeout=None):
        asked.append(timeout)
        hang.wait()

    monkeypatch.setattr(tfds_source.socket, "create_connection", hanging_connection)
    try:
        assert not tfds_source.network_available((("192.0.2.1", 9),), timeout_s=0.05)
        assert asked == [0.05]
    finally:
        hang.set()


def test_unknown_dataset():
    with pytest.raises(DataUnavailableError, match="unknown TFDS dataset"):
        tfds_source.load_tfds("no_such_dataset_xyz", "train")


@pytest.fixture
def online(monkeypatch):
    """Lets load_tfds go on to download_and_prepare, which tfds' mock makes a no-op."""
    monkeypatch.setattr(tfds_source, "network_available", lambda *args, **kwargs: True)


EXPECTED_FEATURES = {
    "imdb_reviews": {"text": tf.string, "label": tf.int64},
    "universal_dependencies/en_ewt": {"tokens": tf.string, "upos": tf.string, "xpos": tf.string},
    "ted_hrlr_translate/pt_to_en": {"source": tf.string, "target": tf.string},
    "wmt14_translate/de-en": {"source": tf.string, "target": tf.string},
    "coco_captions": {"image": tf.uint8, "image_id": tf.int64, "captions": tf.string},
    "tiny_shakespeare": {"text": tf.string},
}


def test_mocked_tfds_gives_plain_features(tmp_path, online):
    with tfds.testing.mock_data(num_examples=2):
        for name, features in EXPECTED_FEATURES.items():
            dataset = tfds_source.load_tfds(name, "train", data_dir=str(tmp_path))
            examples = list(dataset.as_numpy_iterator())
            assert len(examples) == 2, name
            spec = dataset.element_spec
            assert {key: spec[key].dtype for key in spec} == features, name
        upos_names = (
            tfds.builder("universal_dependencies/en_ewt").info.features["upos"].feature.names
        )
        example = next(iter(tfds_source.load_tfds("universal_dependencies/en_ewt", "train")))
        assert set(example["upos"].numpy().astype(str)) <= set(upos_names)


def test_translation_direction(tmp_path, online):
    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices({"pt": ["olá mundo"], "en": ["hello world"]})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        pair = next(iter(tfds_source.load_tfds("ted_hrlr_translate/pt_to_en", "train")))
        assert (pair["source"].numpy(), pair["target"].numpy()) == (
            "olá mundo".encode(),
            b"hello world",
        )
        pair = next(
            iter(
                tfds_source.load_tfds(
                    "ted_hrlr_translate/pt_to_en", "train", reverse_translation=True
                )
            )
        )
        assert pair["source"].numpy() == b"hello world"


def test_conll2003_tags_aligned_and_named(online):
    info = tfds.builder("conll2003").info.features
    names = {key: info[key].feature.names for key in ("pos", "chunks", "ner")}
    lengths = [3, 5]

    def as_dataset(self, *args, **kwargs):  # the default mock gives each feature its own length
        rng = np.random.default_rng(0)

        def examples():
            for length in lengths:
                yield {
                    "tokens": np.array([f"w{i}" for i in range(length)], dtype=object),
                    **{key: rng.integers(0, len(names[key]), size=length) for key in names},
                }

        return tf.data.Dataset.from_generator(
            examples,
            output_signature={
                "tokens": tf.TensorSpec([None], tf.string),
                **{key: tf.TensorSpec([None], tf.int64) for key in names},
            },
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        examples = list(tfds_source.load_tfds("conll2003", "train").as_numpy_iterator())
    raw = list(as_dataset(None).as_numpy_iterator())
    assert [len(e["tokens"]) for e in examples] == lengths
    for example, source in zip(examples, raw):
        for key in ("pos", "chunks", "ner"):
            assert len(example[key]) == len(example["tokens"])
            assert [t.decode() for t in example[key]] == [names[key][i] for i in source[key]]
    assert any(tag.startswith(b"I-") or tag == b"O" for e in examples for tag in e["ner"])


def _no_network(*args, **kwargs):
    raise AssertionError("the network was reached")


def test_offline_preparation_checks_archives(tmp_path, monkeypatch):
    with pytest.raises(DataUnavailableError, match=r"(?s)lacks the archive file.*input\.txt"):
        tfds_source.prepare_offline("tiny_shakespeare", str(tmp_path), str(tmp_path / "data"))
    (tmp_path / "input.txt").write_text("not the registered file\n")
    # Taken from manual_dir and verified, never downloaded.
    monkeypatch.setattr(tfds_source.socket, "create_connection", _no_network)
    with pytest.raises(Exception, match="wrong checksum"):
        tfds_source.prepare_offline("tiny_shakespeare", str(tmp_path), str(tmp_path / "data"))
    archives = tfds_source.expected_archives("imdb_reviews")
    assert archives[0]["file_name"] == "aclImdb_v1.tar.gz" and len(archives[0]["sha256"]) == 64
