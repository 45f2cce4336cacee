"""PNG pictures of captions: an image with its generated and reference captions, and
the attention decoder's weights over the image at each word."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_captions(image: np.ndarray, generated: str, references: Sequence[str], path: Path) -> Path:
    figure = plt.figure(figsize=(6, 6.5))
    axis = figure.add_axes([0.05, 0.38, 0.9, 0.6])
    axis.imshow(image)
    axis.axis("off")
    lines = ["model: " + generated] + [f"ref {i + 1}: {text}" for i, text in enumerate(references[:5])]
    wrapped = "\n".join(textwrap.fill(line, 80, subsequent_indent="    ") for line in lines)
    figure.text(0.05, 0.34, wrapped, va="top", fontsize=8, family="monospace")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_attention(
    image: np.ndarray, words: Sequence[str], alignments: np.ndarray, grid: tuple[int, int], path: Path
) -> Path:
    """One panel per word: the image lit by that step's attention weights over the grid,
    upsampled (bilinear) to the image: bright where the decoder looked, dark elsewhere
    (each panel scaled to its own largest weight)."""
    from scipy.ndimage import zoom

    columns = min(5, len(words) + 1)
    rows = int(np.ceil((len(words) + 1) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.5 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("image", fontsize=9)
    height, width = image.shape[:2]
    for index, (word, weights) in enumerate(zip(words, alignments)):
        weights = np.asarray(weights, np.float64).reshape(grid)
        light = zoom(weights, (height / grid[0], width / grid[1]), order=1, grid_mode=True, mode="nearest")
        light = np.clip(light[:height, :width] / max(float(weights.max()), 1e-12), 0.0, 1.0)
        lit = image.astype(np.float64) * (0.15 + 0.85 * light[..., None])
        axis = axes.flat[index + 1]
        axis.imshow(lit.astype(np.uint8))
        axis.set_title(f"{word} ({weights.max():.2f})", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
