"""What every study hands back: its table (rows of plain values), its figure and the
details worth keeping in metrics.json; and the table as printed."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class StudyResult:
    title: str
    rows: list[dict[str, Any]]
    figure: Path
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. the curves


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def format_table(title: str, rows: list[dict[str, Any]]) -> str:
    """A Markdown table under `title`, one column per key of the first row."""
    if not rows:
        return f"{title}\n(no rows)"
    columns = list(rows[0])
    cells = [[_shown(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = [
        title,
        "| " + " | ".join(column.ljust(width) for column, width in zip(columns, widths)) + " |",
        "|" + "|".join("-" * (width + 2) for width in widths) + "|",
    ]
    for line in cells:
        lines.append("| " + " | ".join(cell.rjust(width) for cell, width in zip(line, widths)) + " |")
    return "\n".join(lines)
