"""`python -m apps.translation train|evaluate|translate|export|ensemble`: sequence to sequence."""

from __future__ import annotations

import argparse

from apps.common.cli import Command, main_guard, run_app
from apps.common.ensemble import add_members_argument
from apps.translation import tasks
from apps.translation.config import TranslationConfig


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split", default="valid", choices=["valid", "test"], help="which parallel files to score"
    )


def _translate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default="-", help="one sentence a line (default: stdin)")
    parser.add_argument("--output", default="-", help="translations (default: stdout)")
    parser.add_argument("--export-dir", default="", help="translate with this SavedModel instead")


def _ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    add_members_argument(parser, "each step searches the mean of their log-probabilities")


COMMANDS = {
    "train": Command(tasks.train, "train SentencePiece and the model", creates_run=True),
    "evaluate": Command(
        tasks.evaluate,
        "BLEU (sacrebleu, detokenised) and sentences/s, greedy and beam; attention heatmaps",
        _evaluate_arguments,
    ),
    "translate": Command(tasks.translate, "translate sentences from stdin or a file", _translate_arguments),
    "predict": Command(tasks.translate, "same as translate", _translate_arguments),
    "export": Command(tasks.export, "write a SavedModel (strings in, translations out)"),
    "ensemble": Command(
        tasks.create_ensemble,
        "pool trained runs that share vocabularies (then evaluate/translate/export --run-dir it)",
        _ensemble_arguments,
        creates_run=True,
    ),
}


def main(argv: list[str] | None = None):
    return run_app(
        "translation",
        TranslationConfig,
        COMMANDS,
        argv,
        description="Encoder-decoder with attention (Bahdanau / Luong), scheduled sampling, "
        "beam search and BLEU.",
    )


if __name__ == "__main__":
    main_guard(main)
