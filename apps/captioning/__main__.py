"""`python -m apps.captioning train|evaluate|predict|export`: image captioning."""

from __future__ import annotations

import argparse

from apps.captioning.config import CaptioningConfig
from apps.common.cli import Command, evaluate_split_argument, export_arguments, main_guard, run_app


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files (JPEG, PNG, BMP, GIF) or folders of them")
    parser.add_argument("--export-dir", default="",
                        help="caption with this SavedModel instead of the run's checkpoint")


TASKS = "apps.captioning.tasks"
COMMANDS = {
    "train": Command(f"{TASKS}:train", "train the encoder-decoder (resumes an existing "
                     "--run-dir); validation CIDEr-D each epoch", creates_run=True),
    "evaluate": Command(
        f"{TASKS}:evaluate",
        "BLEU-1..4, ROUGE-L, CIDEr-D (METEOR, SPICE with Java) of greedy and beam captions "
        "and of two baselines (most frequent caption, nearest-neighbour retrieval); "
        "images/s; pictures", evaluate_split_argument,
    ),
    "predict": Command(f"{TASKS}:predict", "print one caption per image file", _predict_arguments),
    "export": Command(f"{TASKS}:export", "write a SavedModel (image bytes in, captions out)",
                      export_arguments),
}


def main(argv: list[str] | None = None):
    return run_app(
        "captioning",
        CaptioningConfig,
        COMMANDS,
        argv,
        description="Image captioning: a CNN encoder (small CNN or keras.applications), "
        "Show-Tell or Show-Attend-Tell decoders with any cell, beam search, COCO metrics.",
    )


if __name__ == "__main__":
    main_guard(main)
