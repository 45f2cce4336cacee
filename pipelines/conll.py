"""Column files for sequence tagging: CoNLL-2000/2003 and CoNLL-U.

Tags are returned as written; convert entity tags (CoNLL-2003 is IOB1) with
:func:`pipelines.tag_schemes.convert_tags`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from pipelines._io import iter_lines
from pipelines.errors import DataFormatError

#: Default column names by column count (CoNLL-2003: 4, CoNLL-2000: 3).
DEFAULT_COLUMNS = {
    2: ("tokens", "tags"),
    3: ("tokens", "pos", "chunks"),
    4: ("tokens", "pos", "chunks", "ner"),
}

#: CoNLL-U columns, named as in TFDS's ``universal_dependencies``.
CONLLU_COLUMNS = (
    "id",
    "tokens",
    "lemmas",
    "upos",
    "xpos",
    "feats",
    "head",
    "deprel",
    "deps",
    "misc",
)


def read_conll(
    path: str,
    columns: Sequence[str] | None = None,
    separator: str | None = None,
    line_numbers: bool = False,
) -> list[dict[str, list]]:
    """Reads a CoNLL-2000/2003 style file: one token per line, blank lines between sentences.

    ``-DOCSTART-`` lines (document boundaries, wherever they appear, including at the end
    of the file) end the current sentence and are skipped. Tags are returned as written
    (CoNLL-2003 uses IOB1; convert with ``pipelines.tag_schemes.convert_tags``).

    Args:
        path: the file (``.gz`` read transparently).
        columns: a name per column; default by column count: 4 -> tokens, pos, chunks,
            ner (CoNLL-2003), 3 -> tokens, pos, chunks (CoNLL-2000), 2 -> tokens, tags.
        separator: column separator; default any run of whitespace.
        line_numbers: also return each token's 1-based line number, as the column
            ``"line_numbers"`` (to report a bad value where it is).

    Returns:
        A list of sentences, each ``{column: [value per token]}``.
    """
    sentences: list[dict[str, list]] = []
    current: list[list[str]] = []
    lines: list[int] = []
    width = len(columns) if columns is not None else None

    def flush():
        if current:
            sentence: dict[str, list] = {name: [row[i] for row in current] for i, name in enumerate(columns)}
            if line_numbers:
                sentence["line_numbers"] = list(lines)
            sentences.append(sentence)
            current.clear()
            lines.clear()

    for line_number, line in iter_lines(path):
        if not line.strip():
            flush()
            continue
        fields = line.split(separator) if separator is not None else line.split()
        if fields[0] == "-DOCSTART-":
            flush()
            continue
        if width is None:
            if len(fields) not in DEFAULT_COLUMNS:
                raise DataFormatError(
                    path,
                    line_number,
                    f"{len(fields)} columns; pass columns=(...) naming each of them",
                )
            columns = DEFAULT_COLUMNS[len(fields)]
            width = len(fields)
        if len(fields) != width:
            raise DataFormatError(
                path,
                line_number,
                f"expected {width} columns ({', '.join(columns)}), found {len(fields)}: {line!r}",
            )
        if any(not field for field in fields):
            raise DataFormatError(path, line_number, f"empty column in {line!r}")
        current.append(fields)
        lines.append(line_number)
    flush()
    if not sentences:
        raise DataFormatError(
            path, None, "no sentences: the file is empty or holds only blank lines"
        )
    return sentences


_INTEGER_ID = re.compile(r"^[0-9]+$")
_RANGE_ID = re.compile(r"^[0-9]+-[0-9]+$")
_EMPTY_NODE_ID = re.compile(r"^[0-9]+\.[0-9]+$")


def read_conllu(
    path: str, fields: Sequence[str] = ("tokens", "upos", "xpos"), line_numbers: bool = False
) -> list[dict[str, list]]:
    """Reads a CoNLL-U file (Universal Dependencies) into word-level sentences.

    Comment lines (``#``) are skipped; multiword-token lines (IDs like ``3-4``) and empty
    nodes (IDs like ``8.1``) are skipped, so each sentence lists its syntactic words.

    Args:
        fields: which columns to return, by their TFDS names: ``id, tokens (FORM), lemmas,
            upos, xpos, feats, head, deprel, deps, misc``.
        line_numbers: also return each word's 1-based line number, as the field
            ``"line_numbers"``.

    Returns:
        A list of sentences, each ``{field: [value per word]}``.
    """
    unknown = [field for field in fields if field not in CONLLU_COLUMNS]
    if unknown:
        raise ValueError(f"unknown CoNLL-U fields {unknown}; choose from {CONLLU_COLUMNS}")
    indices = [CONLLU_COLUMNS.index(field) for field in fields]
    sentences: list[dict[str, list]] = []
    current: list[list[str]] = []
    lines: list[int] = []
    start_line = 0

    def flush():
        if current:
            sentence: dict[str, list] = {f: [row[i] for row in current] for f, i in zip(fields, indices)}
            if line_numbers:
                sentence["line_numbers"] = list(lines)
            sentences.append(sentence)
            current.clear()
            lines.clear()

    for line_number, line in iter_lines(path):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise DataFormatError(
                path,
                line_number,
                f"expected 10 TAB-separated columns (ID FORM LEMMA UPOS XPOS FEATS HEAD "
                f"DEPREL DEPS MISC), found {len(columns)}",
            )
        word_id = columns[0]
        if _RANGE_ID.match(word_id) or _EMPTY_NODE_ID.match(word_id):
            continue
        if not _INTEGER_ID.match(word_id):
            raise DataFormatError(path, line_number, f"invalid word ID {word_id!r}")
        if not current:
            start_line = line_number
        if int(word_id) != len(current) + 1:
            raise DataFormatError(
                path,
                line_number,
                f"word ID {word_id} out of sequence (expected {len(current) + 1} in the "
                f"sentence starting at line {start_line}); is a blank line missing?",
            )
        current.append(columns)
        lines.append(line_number)
    flush()
    if not sentences:
        raise DataFormatError(path, None, "no sentences: the file is empty or holds only comments")
    return sentences


def sentences_to_dataset(sentences: Sequence[dict[str, Sequence[str]]]) -> tf.data.Dataset:
    """A dataset of ``{field: string [num_tokens]}`` from reader output, in order."""
    if not sentences:
        raise ValueError("no sentences")
    keys = list(sentences[0])
    lengths = np.array([len(sentence[keys[0]]) for sentence in sentences], dtype=np.int64)
    features = {}
    for key in keys:
        values = [value for sentence in sentences for value in sentence[key]]
        ragged = tf.RaggedTensor.from_row_lengths(np.array(values, dtype=object), lengths)
        features[key] = ragged
    dataset = tf.data.Dataset.from_tensor_slices(features)
    # Slices of a ragged tensor come out as rank-0-ragged specs; make them plain tensors.
    return dataset.map(
        lambda example: {
            key: value.flat_values if isinstance(value, tf.RaggedTensor) else value
            for key, value in example.items()
        }
    )
