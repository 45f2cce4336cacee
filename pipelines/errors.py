"""Errors raised by the input pipelines."""

from __future__ import annotations


class DataFormatError(ValueError):
    """A data file is malformed.

    The message names the file, the line (where one applies) and what is wrong, e.g.
    ``data/train.conll:17: expected 4 columns (tokens, pos, chunks, ner), found 3``.

    Attributes:
        path: the file that is malformed.
        line_number: 1-based line number of the problem, or None if it concerns the file.
        reason: what is wrong, without the location.
    """

    def __init__(self, path: str, line_number: int | None, reason: str):
        self.path = str(path)
        self.line_number = line_number
        self.reason = reason
        location = self.path if line_number is None else f"{self.path}:{line_number}"
        super().__init__(f"{location}: {reason}")


class DataUnavailableError(RuntimeError):
    """A dataset cannot be obtained: not prepared locally and it cannot be downloaded."""
