"""File helpers shared by the readers: transparent gzip and UTF-8 lines with line numbers."""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator

import tensorflow as tf

from pipelines.errors import DataFormatError

_GZIP_MAGIC = b"\x1f\x8b"


def check_exists(path: str) -> None:
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no such file")


def read_bytes(path: str) -> bytes:
    """Reads a whole file; gzip-compressed files (by magic number) are decompressed."""
    check_exists(path)
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise DataFormatError(path, None, f"corrupt gzip data ({error})") from error
    return data


def decode_line(path: str, line_number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataFormatError(
            path,
            line_number,
            f"invalid UTF-8 (byte {raw[error.start : error.start + 1]!r} at column "
            f"{error.start + 1}); re-encode the file as UTF-8",
        ) from error


def iter_lines(path: str) -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, line without its end-of-line) of a UTF-8 text file."""
    data = read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):  # byte-order mark
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for index, raw in enumerate(lines):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        yield index + 1, decode_line(path, index + 1, raw)


def read_text_file(path: str) -> str:
    """The whole file as text; invalid UTF-8 is reported with its line number."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_number = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataFormatError(
            path,
            line_number,
            f"invalid UTF-8 (byte {data[error.start : error.start + 1]!r} at column {column}); "
            "re-encode the file as UTF-8",
        ) from error


def text_stream(path: str) -> io.StringIO:
    return io.StringIO(read_text_file(path))


def strip_compression_suffix(path: str) -> str:
    base = os.path.basename(path)
    return base[:-3] if base.endswith(".gz") else base
