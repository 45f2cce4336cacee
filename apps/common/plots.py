"""Learning-curve plots written as PNG into the run directory."""

from __future__ import annotations

import csv
import dataclasses
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


@dataclasses.dataclass
class Panel:
    """One axis of a figure: a line per named curve.

    `x_values` give each curve's x (default 1, 2, ...); `bands` shade a (low, high) range
    around a curve (e.g. the spread over seeds); `hline` draws a dashed reference level;
    `markers` marks each point; `invert_x` runs the x axis from right to left."""

    curves: Mapping[str, Sequence[float]]
    title: str = ""
    xlabel: str = "epoch"
    ylabel: str = "loss"
    log_x: bool = False
    log_y: bool = False
    x_values: Mapping[str, Sequence[float]] | None = None
    bands: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None
    hline: float | None = None
    markers: bool = False
    invert_x: bool = False


_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_LINE_STYLES = ("-", "--", ":", "-.")


def _draw(axis, panel: Panel) -> None:
    all_xs: set = set()
    for index, (name, values) in enumerate(panel.curves.items()):
        xs = list(panel.x_values[name]) if panel.x_values else list(range(1, len(values) + 1))
        all_xs.update(xs)
        style = {}
        if panel.markers:  # points of several lines often coincide: each line its own
            # marker and dashes, later ones thinner and smaller, so that none hides another
            layer = index % 4
            style = {"marker": _MARKERS[index % len(_MARKERS)], "markersize": 9 - 2 * layer,
                     "linewidth": 3.2 - 0.7 * layer,
                     "linestyle": _LINE_STYLES[index % len(_LINE_STYLES)]}
        (line,) = axis.plot(xs, list(values), label=name, **style)
        if panel.bands and name in panel.bands:
            low, high = panel.bands[name]
            axis.fill_between(xs, list(low), list(high), color=line.get_color(), alpha=0.15)
    if panel.hline is not None:
        axis.axhline(panel.hline, color="grey", linestyle="--", linewidth=1)
    if panel.log_x:
        axis.set_xscale("log")
        if len(all_xs) <= 12:  # label the measured points plainly
            axis.set_xticks(sorted(all_xs), [f"{x:g}" for x in sorted(all_xs)])
            axis.minorticks_off()
    if panel.log_y:
        axis.set_yscale("log")
    if panel.invert_x:
        axis.invert_xaxis()
    axis.set_title(panel.title)
    axis.set_xlabel(panel.xlabel)
    axis.set_ylabel(panel.ylabel)
    axis.grid(True, alpha=0.3)
    if panel.curves:
        axis.legend(fontsize="small")


def plot_panels(
    panels: Sequence[Panel], path: Path, title: str = "", columns: int | None = None
) -> Path:
    """The panels side by side (`columns` a row, default all), under one `title`."""
    columns = columns or len(panels)
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.0 * columns, 4.2 * rows), squeeze=False)
    for axis, panel in zip(axes.flat, panels):
        _draw(axis, panel)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


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
    _draw(axis, Panel(curves, title, xlabel, ylabel, log_y=log_y, x_values=x_values,
                      hline=hline))
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
