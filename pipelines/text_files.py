"""Readers for local text files: classification sets, plain text, parallel corpora.

All readers accept gzip-compressed files transparently (``.gz`` or not: the magic number
decides) and report malformed input as :class:`pipelines.errors.DataFormatError` with the
file, the line and what is wrong. The column-file, caption and music readers live in
``conll.py``, ``captions.py`` and ``music.py`` and are re-exported here for convenience.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from pipelines._io import (
    iter_lines,
    parse_json,
    read_bytes,
    read_text_file,
    strip_compression_suffix,
)
from pipelines.captions import load_image, read_coco_captions  # noqa: F401  (re-export)
from pipelines.conll import read_conll, read_conllu  # noqa: F401  (re-export)
from pipelines.errors import DataFormatError
from pipelines.music import read_jsb  # noqa: F401  (re-export)

logger = logging.getLogger(__name__)

_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".txt": "tsv"}


def _classification_dataset(texts: list[str], labels: list[int]) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(
        {"text": np.array(texts, dtype=object), "label": np.array(labels, dtype=np.int64)}
    )


def read_classification_folder(
    path: str,
    split: str | None = None,
    class_names: Sequence[str] | None = None,
) -> tf.data.Dataset:
    """Reads a folder of one-text-per-file examples, one subfolder per class.

    This is the layout of IMDB's ``aclImdb`` (``aclImdb/train/{neg,pos}/*.txt``) and of
    ``keras.utils.text_dataset_from_directory``. With ``split`` the folder
    ``path/split`` is read. The default classes are the subfolders in sorted order,
    without ``unsup`` (aclImdb's unlabeled reviews), so aclImdb gives neg=0, pos=1.

    Returns:
        A dataset of ``{"text": string, "label": int64}`` in class order, files sorted by
        name (shuffle it yourself).
    """
    root = os.path.join(path, split) if split else path
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    if class_names is None:
        class_names = sorted(
            name.rstrip("/")
            for name in tf.io.gfile.listdir(root)
            if tf.io.gfile.isdir(os.path.join(root, name)) and name.rstrip("/") != "unsup"
        )
    if not class_names:
        raise DataFormatError(root, None, "no class subfolders (expected e.g. neg/ and pos/)")
    texts, labels = [], []
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        if not tf.io.gfile.isdir(folder):
            raise FileNotFoundError(f"{folder}: class folder missing")
        files = sorted(f for f in tf.io.gfile.listdir(folder) if not f.endswith("/"))
        if not files:
            raise DataFormatError(folder, None, f"class folder {name!r} holds no files")
        for file_name in files:
            file_path = os.path.join(folder, file_name)
            text = read_text_file(file_path).strip()
            if not text:
                raise DataFormatError(file_path, 1, "empty file (expected one text)")
            texts.append(text)
            labels.append(label)
    logger.info("Read %d examples in %d classes from %s", len(texts), len(class_names), root)
    return _classification_dataset(texts, labels)


def _infer_format(path: str, file_format: str | None) -> str:
    if file_format is not None:
        if file_format not in ("jsonl", "csv", "tsv"):
            raise ValueError(f"file_format must be 'jsonl', 'csv' or 'tsv', got {file_format!r}")
        return file_format
    extension = os.path.splitext(strip_compression_suffix(path))[1].lower()
    if extension not in _FORMATS:
        raise ValueError(
            f"{path}: cannot tell the format from the extension {extension!r}; "
            "pass file_format='jsonl', 'csv' or 'tsv'"
        )
    return _FORMATS[extension]


def _parse_label(path, line_number, value, label_names):
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        stripped = value.strip()
        if label_names is not None:
            if stripped not in label_names:
                raise DataFormatError(
                    path,
                    line_number,
                    f"unknown label {stripped!r}; expected one of {list(label_names)}",
                )
            return label_names.index(stripped)
        try:
            return int(stripped)
        except ValueError:
            return stripped  # resolved once all labels are known
    raise DataFormatError(path, line_number, f"label must be an integer or a string, got {value!r}")


def read_classification_examples(
    path: str,
    text_field: str = "text",
    label_field: str = "label",
    file_format: str | None = None,
    label_names: Sequence[str] | None = None,
    num_classes: int | None = None,
) -> tuple[list[str], list[int], list[str] | None]:
    """Parses a JSONL/CSV/TSV classification file into Python lists.

    JSONL: one JSON object per line with ``text_field`` and ``label_field``.
    CSV/TSV: a header naming ``text_field`` and ``label_field`` (any order, other columns
    ignored), or no header and exactly two columns ``label, text``.
    Labels are integers, or strings mapped to ids through ``label_names`` (default: the
    sorted distinct strings). With ``num_classes`` every label id must be below it.

    Returns:
        ``(texts, labels, label_names)``; ``label_names`` is None for integer labels.
    """
    file_format = _infer_format(path, file_format)
    names = list(label_names) if label_names is not None else None
    texts: list[str] = []
    raw_labels: list = []
    line_numbers: list[int] = []
    if file_format == "jsonl":
        for line_number, line in iter_lines(path):
            if not line.strip():
                continue
            record = parse_json(path, line, line_number)
            if not isinstance(record, dict):
                raise DataFormatError(path, line_number, "expected a JSON object per line")
            for field in (text_field, label_field):
                if field not in record:
                    raise DataFormatError(
                        path, line_number, f"missing field {field!r} (fields: {sorted(record)})"
                    )
            if not isinstance(record[text_field], str):
                raise DataFormatError(path, line_number, f"field {text_field!r} is not a string")
            texts.append(record[text_field])
            raw_labels.append(_parse_label(path, line_number, record[label_field], names))
            line_numbers.append(line_number)
    else:
        delimiter = "," if file_format == "csv" else "\t"
        lines = (line + "\n" for _, line in iter_lines(path))
        reader = csv.reader(lines, delimiter=delimiter)
        text_column, label_column, width = 1, 0, 2
        first = True
        for row in _csv_rows(path, reader):
            line_number = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if first:
                first = False
                lowered = [cell.strip().lower() for cell in row]
                if text_field.lower() in lowered and label_field.lower() in lowered:
                    text_column = lowered.index(text_field.lower())
                    label_column = lowered.index(label_field.lower())
                    width = len(row)
                    continue
            if len(row) != width:
                raise DataFormatError(
                    path,
                    line_number,
                    f"expected {width} columns, found {len(row)}"
                    + (" (label, text)" if width == 2 else "")
                    + ("; quote texts that contain the delimiter" if len(row) > width else ""),
                )
            texts.append(row[text_column])
            raw_labels.append(_parse_label(path, line_number, row[label_column], names))
            line_numbers.append(line_number)
    if not texts:
        raise DataFormatError(
            path, None, "no examples: the file is empty or holds only blank lines"
        )
    string_labels = sorted({label for label in raw_labels if isinstance(label, str)})
    if string_labels:
        if any(isinstance(label, int) for label in raw_labels):
            index = next(i for i, label in enumerate(raw_labels) if isinstance(label, str))
            raise DataFormatError(
                path,
                line_numbers[index],
                f"label {raw_labels[index]!r} is not an integer like the others",
            )
        names = string_labels
        logger.info("%s: string labels mapped to ids %s", path, dict(zip(names, range(len(names)))))
        raw_labels = [names.index(label) for label in raw_labels]
    for label, line_number in zip(raw_labels, line_numbers):
        if label < 0:
            raise DataFormatError(path, line_number, f"negative label {label}")
        if num_classes is not None and label >= num_classes:
            shown = f"label {names[label]!r} (id {label})" if names else f"label {label}"
            raise DataFormatError(
                path, line_number, f"{shown} out of range: {num_classes} classes, ids 0 to {num_classes - 1}"
            )
    return texts, raw_labels, names


def _csv_rows(path: str, reader):
    """The rows of a `csv.reader`, its errors (a field over the size limit, a line end
    inside an unquoted field) as DataFormatErrors naming the line."""
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # texts may be long: a review, a whole document
    try:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise DataFormatError(path, reader.line_num, f"not valid CSV ({error})") from error
            yield row
    finally:
        csv.field_size_limit(limit)


def read_classification_file(
    path: str,
    text_field: str = "text",
    label_field: str = "label",
    file_format: str | None = None,
    label_names: Sequence[str] | None = None,
) -> tf.data.Dataset:
    """Reads a JSONL/CSV/TSV file of (label, text) examples; see ``read_classification_examples``.

    Returns:
        A dataset of ``{"text": string, "label": int64}`` in file order.
    """
    texts, labels, _ = read_classification_examples(
        path, text_field, label_field, file_format, label_names
    )
    return _classification_dataset(texts, labels)


def read_classification(path: str, split: str | None = None, **kwargs) -> tf.data.Dataset:
    """A folder (aclImdb layout) or a JSONL/CSV/TSV file, whichever ``path`` is."""
    if tf.io.gfile.isdir(path):
        return read_classification_folder(path, split=split, **kwargs)
    return read_classification_file(path, **kwargs)


def read_text(path: str) -> str:
    """The whole UTF-8 text of a (possibly gzip-compressed) file, e.g. for a language model."""
    text = read_text_file(path)
    if not text.strip():
        raise DataFormatError(path, None, "no text: the file is empty or holds only whitespace")
    return text


def read_lines(path: str, skip_blank: bool = False, allow_empty: bool = False) -> list[str]:
    """The lines of a UTF-8 text file, without their end-of-line characters; a file with
    no text is a DataFormatError unless `allow_empty`."""
    lines = [line for _, line in iter_lines(path) if not (skip_blank and not line.strip())]
    if not allow_empty and not any(line.strip() for line in lines):
        raise DataFormatError(path, None, "no text: the file is empty or holds only blank lines")
    return lines


def read_parallel_examples(
    source_path: str, target_path: str, allow_empty: bool = False
) -> tuple[list[str], list[str]]:
    """Line-aligned sentence pairs from two plain-text files (line i translates line i)."""
    sources = [line.strip() for _, line in iter_lines(source_path)]
    targets = [line.strip() for _, line in iter_lines(target_path)]
    if len(sources) != len(targets):
        raise DataFormatError(
            source_path,
            None,
            f"parallel files have unequal line counts: {source_path} has {len(sources)} "
            f"lines, {target_path} has {len(targets)}; line i of one must translate line i "
            "of the other",
        )
    if not sources:
        raise DataFormatError(source_path, None, "no sentences: the file is empty")
    if not allow_empty:
        for index, (source, target) in enumerate(zip(sources, targets)):
            if not source or not target:
                empty = source_path if not source else target_path
                raise DataFormatError(
                    empty, index + 1, "empty sentence (pass allow_empty=True to keep empty lines)"
                )
    return sources, targets


def read_parallel(source_path: str, target_path: str, allow_empty: bool = False) -> tf.data.Dataset:
    """Reads a parallel corpus; see ``read_parallel_examples``.

    Returns:
        A dataset of ``{"source": string, "target": string}`` in file order.
    """
    sources, targets = read_parallel_examples(source_path, target_path, allow_empty)
    return tf.data.Dataset.from_tensor_slices(
        {"source": np.array(sources, dtype=object), "target": np.array(targets, dtype=object)}
    )


__all__ = [
    "load_image",
    "read_bytes",
    "read_classification",
    "read_classification_examples",
    "read_classification_file",
    "read_classification_folder",
    "read_coco_captions",
    "read_conll",
    "read_conllu",
    "read_jsb",
    "read_lines",
    "read_parallel",
    "read_parallel_examples",
    "read_text",
]
