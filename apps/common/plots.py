"""Learning-curve plots written as PNG into the run directory."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_history(path: Path) -> dict[str, list[float]]:
    """Columns of a Keras CSVLogger file (resumed runs append rows; the last row of each
    epoch wins)."""
    by_epoch: dict[int, dict[str, float]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("epoch", "epoch") == "epoch":
                continue
            by_epoch[int(row["epoch"])] = {
                key: float(value)
                for key, value in row.items()
                if key != "epoch" and _is_number(value)
            }
    columns: dict[str, list[float]] = {}
    for epoch in sorted(by_epoch):
        for key, value in by_epoch[epoch].items():
            columns.setdefault(key, []).append(value)
    return columns


def _is_number(text: str | None) -> bool:
    try:
        float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    path: Path,
    title: str,
    xlabel: str = "epoch",
    ylabel: str = "loss",
    log_y: bool = False,
    x_values: Mapping[str, Sequence[float]] | None = None,
    hline: float | None = None,
) -> Path:
    """One line per named curve; `hline` draws a dashed reference level."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, values in curves.items():
        xs = x_values[name] if x_values else range(1, len(values) + 1)
        axis.plot(list(xs), list(values), label=name)
    if hline is not None:
        axis.axhline(hline, color="grey", linestyle="--", linewidth=1)
    if log_y:
        axis.set_yscale("log")
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_heatmap(
    matrix,
    path: Path,
    x_labels: Sequence[str],
    y_labels: Sequence[str],
    title: str,
    xlabel: str = "",
    ylabel: str = "",
) -> Path:
    """A labelled heatmap of `matrix` [len(y_labels), len(x_labels)] (e.g. attention
    weights: rows are output steps, columns input positions)."""
    rows, columns = len(y_labels), len(x_labels)
    figure, axis = plt.subplots(
        figsize=(min(2.0 + 0.35 * columns, 30.0), min(1.5 + 0.3 * rows, 30.0))
    )
    image = axis.imshow(matrix, cmap="viridis", aspect="auto", vmin=0.0)
    axis.set_xticks(range(columns))
    axis.set_xticklabels(list(x_labels), rotation=90, fontsize=8)
    axis.set_yticks(range(rows))
    axis.set_yticklabels(list(y_labels), fontsize=8)
    axis.set_title(title, fontsize=9)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    figure.colorbar(image, ax=axis, fraction=0.03)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
