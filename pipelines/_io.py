"""File helpers shared by the readers: transparent gzip and UTF-8 lines with line numbers."""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
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
    if tf.io.gfile.isdir(path):
        raise DataFormatError(path, None, "a folder, not a file")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except tf.errors.OpError as error:
        raise OSError(f"{path}: cannot be read ({error.message})") from error
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(path, None, f"corrupt gzip data ({error})") from error
    return data


def parse_json(path: str, text: str, line_number: int | None = None):
    """`json.loads(text)` of the file `path` (or of its line `line_number`), with a
    DataFormatError naming the file and line for invalid or too deeply nested JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = line_number if line_number is not None else error.lineno
        raise DataFormatError(path, where, f"invalid JSON ({error.msg})") from error
    except RecursionError as error:
        raise DataFormatError(path, line_number, "JSON nested too deeply") from error


def write_atomically(path: str, data: bytes) -> None:
    """Writes `data` to a temporary file beside `path`, then renames it over `path`: a
    process killed while writing leaves the old file or none, never a part of one that a
    rerun would trust."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.tmp{os.getpid()}")
    with tf.io.gfile.GFile(temporary, "wb") as f:
        f.write(data)
    tf.io.gfile.rename(temporary, path, overwrite=True)


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
    """The whole file as text (without a byte-order mark); invalid UTF-8 is reported with
    its line number."""
    data = read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):  # byte-order mark
        data = data[3:]
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
