"""TensorFlow Datasets by name, mapped to the plain features the local readers give.

``load_tfds`` fails in well under two seconds, with a :class:`DataUnavailableError` that
says how to use local files, when the dataset is not prepared in ``data_dir`` and the
download hosts cannot be reached (TFDS's own downloader would retry for minutes).

Offline preparation, for users who have the original archives but no network:

1. Put the archive files, under the file names the dataset's download URLs end with, in
   one folder, e.g. ``~/archives/aclImdb_v1.tar.gz``.
2. Run ``python -m pipelines.tfds_source prepare imdb_reviews --archives ~/archives
   --data-dir ~/tensorflow_datasets`` (or call :func:`prepare_offline`). TFDS takes a file
   from that folder (its ``manual_dir``) in place of downloading the URL, checks the size
   and SHA-256 registered in the dataset's ``checksums.tsv`` and builds the TFRecords.
   ``python -m pipelines.tfds_source urls imdb_reviews`` lists the expected file names,
   sizes and checksums.
3. Load with ``load_tfds("imdb_reviews", "train", data_dir="~/tensorflow_datasets")`` on
   any machine that has that folder: a prepared copy needs no network.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines.errors import DataUnavailableError

logger = logging.getLogger(__name__)

#: Hosts probed before a download: TFDS's own bucket. A dataset downloads from its own
#: source too, but a machine that cannot resolve this one is offline for our purposes.
PROBE_HOSTS = (("storage.googleapis.com", 443),)
PROBE_TIMEOUT_S = 1.0

#: Local-file readers to suggest in the offline error, by dataset family.
LOCAL_ALTERNATIVES = {
    "imdb_reviews": "pipelines.text_files.read_classification('aclImdb', split='train') "
    "or read_classification_file('train.jsonl.gz')",
    "conll2003": "pipelines.conll.read_conll('eng.train')",
    "universal_dependencies": "pipelines.conll.read_conllu('en_ewt-ud-train.conllu')",
    "ted_hrlr_translate": "pipelines.text_files.read_parallel('train.pt', 'train.en')",
    "wmt14_translate": "pipelines.text_files.read_parallel('train.de', 'train.en')",
    "coco_captions": "pipelines.captions.read_coco_captions('captions_train.json', 'images/')",
    "tiny_shakespeare": "pipelines.text_files.read_text('input.txt')",
}


def network_available(hosts=PROBE_HOSTS, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to a download host opens within ``timeout_s`` seconds.

    The probe runs in a daemon thread so that a hanging DNS lookup cannot block longer.
    """
    result: list[bool] = []

    def probe():
        for host, port in hosts:
            try:
                with socket.create_connection((host, port), timeout=timeout_s):
                    result.append(True)
                    return
            except OSError:
                continue
        result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s + 0.2)
    return bool(result and result[0])


def _family(name: str) -> str:
    return name.split("/")[0].split(":")[0]


def _unavailable_message(name: str, data_dir: str | None, reason: str) -> str:
    family = _family(name)
    local = LOCAL_ALTERNATIVES.get(family, "the readers in pipelines.text_files")
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return (
        f"TFDS dataset {name!r} is not prepared in {where} and {reason}.\n"
        f"- Use local files instead: pass them to the app (e.g. --data-dir / --train-file), "
        f"read with {local}.\n"
        f"- Or point data_dir (--tfds-data-dir) at a folder where {name!r} is already prepared.\n"
        f"- Or, with the original archives at hand, prepare it offline: python -m "
        f"pipelines.tfds_source prepare {name} --archives DIR --data-dir DIR "
        "(see pipelines/README.md)."
    )


def _class_names(feature) -> tf.Tensor:
    return tf.constant(feature.names)


def _to_names(ids: tf.Tensor, names: tf.Tensor) -> tf.Tensor:
    return tf.gather(names, ids)


def _feature_mapper(name: str, info) -> Callable[[dict], Any] | None:
    """The function mapping TFDS features to plain features, per dataset family."""
    family = _family(name)
    features = info.features
    if family == "imdb_reviews":
        return lambda x: {"text": x["text"], "label": tf.cast(x["label"], tf.int64)}
    if family == "conll2003":
        names = {key: _class_names(features[key].feature) for key in ("pos", "chunks", "ner")}
        return lambda x: {
            "tokens": x["tokens"],
            **{key: _to_names(x[key], names[key]) for key in ("pos", "chunks", "ner")},
        }
    if family == "universal_dependencies":
        upos = _class_names(features["upos"].feature)
        return lambda x: {
            "tokens": x["tokens"],
            "upos": _to_names(x["upos"], upos),
            "xpos": x["xpos"],
        }
    if family in ("ted_hrlr_translate", "wmt14_translate", "wmt15_translate", "wmt16_translate"):
        source, target = info.supervised_keys
        return lambda x: {"source": x[source], "target": x[target]}
    if family == "coco_captions":
        return lambda x: {
            "image": x["image"],
            "image_id": x["image/id"],
            "captions": x["captions"]["text"],
        }
    if family == "tiny_shakespeare":
        return lambda x: {"text": x["text"]}
    return None


def load_tfds(
    name: str,
    split: str,
    data_dir: str | None = None,
    download: bool = True,
    shuffle_files: bool = False,
    reverse_translation: bool = False,
    **kwargs,
) -> tf.data.Dataset:
    """Loads a TFDS dataset as plain features, failing fast when it cannot be had.

    Plain features per dataset (tags as strings, like the local readers give):

    - ``imdb_reviews``: ``{"text", "label" int64}``
    - ``conll2003``: ``{"tokens", "pos", "chunks", "ner"}`` (IOB1 tag strings, as released)
    - ``universal_dependencies/en_ewt``: ``{"tokens", "upos", "xpos"}``
    - ``ted_hrlr_translate/pt_to_en``, ``wmt14_translate/de-en``: ``{"source", "target"}``
      (the dataset's supervised keys, e.g. pt -> en; ``reverse_translation`` swaps them)
    - ``coco_captions``: ``{"image" uint8, "image_id", "captions" string [n]}``
    - ``tiny_shakespeare``: ``{"text"}`` (the whole split as one string)
    - other names: the TFDS features unchanged.

    Args:
        name: TFDS name, with config (``"universal_dependencies/en_ewt"``).
        split: TFDS split expression (``"train"``, ``"train[:90%]"``).
        data_dir: where prepared datasets live (default TFDS's, ``~/tensorflow_datasets``).
        download: prepare the dataset if missing and the network is reachable.
        **kwargs: passed to ``builder.as_dataset`` (e.g. ``read_config``).

    Raises:
        DataUnavailableError: not prepared, and downloading is off or the network is
            unreachable; the message says how to use local files instead.
    """
    if data_dir is not None:
        data_dir = os.path.expanduser(data_dir)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise DataUnavailableError(f"unknown TFDS dataset {name!r}: {error}") from error
    if not builder.is_prepared():
        if not download:
            raise DataUnavailableError(
                _unavailable_message(name, data_dir, "downloading is turned off (download=False)")
            )
        if not network_available():
            raise DataUnavailableError(
                _unavailable_message(
                    name, data_dir, "the download servers cannot be reached (no network)"
                )
            )
        builder.download_and_prepare()
    dataset = builder.as_dataset(split=split, shuffle_files=shuffle_files, **kwargs)
    mapper = _feature_mapper(name, builder.info)
    if mapper is None:
        logger.info("No plain-feature mapping for %s; returning TFDS features unchanged", name)
        return dataset
    dataset = dataset.map(mapper, num_parallel_calls=tf.data.AUTOTUNE)
    if reverse_translation:
        dataset = dataset.map(lambda x: {"source": x["target"], "target": x["source"]})
    return dataset


def expected_archives(name: str) -> list[dict[str, Any]]:
    """The files a dataset downloads: URL, file name, size and SHA-256, from TFDS's registry."""
    builder = tfds.builder(name)
    infos = builder.url_infos or {}
    return [
        {
            "url": url,
            "file_name": info.filename or url.rstrip("/").split("/")[-1],
            "size": info.size,
            "sha256": info.checksum,
        }
        for url, info in sorted(infos.items())
    ]


def prepare_offline(name: str, archives_dir: str, data_dir: str | None = None) -> str:
    """Builds a TFDS dataset from archives already on disk (no network).

    The files in ``archives_dir`` must carry the names listed by :func:`expected_archives`;
    TFDS verifies them against the registered checksums.

    Returns:
        The folder of the prepared dataset.
    """
    archives_dir = os.path.expanduser(archives_dir)
    missing = [
        entry
        for entry in expected_archives(name)
        if not os.path.exists(os.path.join(archives_dir, entry["file_name"]))
    ]
    if missing:
        listing = "\n".join(
            f"  {entry['file_name']} ({entry['size']}, sha256 {entry['sha256']}) from {entry['url']}"
            for entry in missing
        )
        raise DataUnavailableError(
            f"{archives_dir} lacks the archive file(s) that {name!r} is built from:\n{listing}"
        )
    builder = tfds.builder(name, data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=archives_dir)
    builder.download_and_prepare(download_config=config)
    return str(builder.data_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.tfds_source", description="Prepare TFDS datasets offline."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    urls = commands.add_parser("urls", help="list the archive files a dataset needs")
    urls.add_argument("name")
    prepare = commands.add_parser("prepare", help="build a dataset from archives on disk")
    prepare.add_argument("name")
    prepare.add_argument("--archives", required=True, help="folder holding the archive files")
    prepare.add_argument("--data-dir", default=None, help="TFDS data dir to write")
    args = parser.parse_args(argv)
    if args.command == "urls":
        for entry in expected_archives(args.name):
            print(f"{entry['file_name']}\t{entry['size']}\t{entry['sha256']}\t{entry['url']}")
    else:
        print(prepare_offline(args.name, args.archives, args.data_dir))


if __name__ == "__main__":
    main()
