"""`python -m apps.translation train|evaluate|predict|export|translate|ensemble`: sequence
to sequence."""

from __future__ import annotations

import argparse

from apps.common.cli import Command, evaluate_split_argument, export_arguments, main_guard, run_app
from apps.common.ensemble import ENSEMBLE_SCOPES, add_members_argument
from apps.translation.config import TranslationConfig


def _translate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default="-",
                        help="sentences to translate, one a line (default: - for stdin)")
    parser.add_argument("--output", default="-",
                        help="where translations go, one a line (default: - for stdout)")
    parser.add_argument("--export-dir", default="",
                        help="translate with this SavedModel instead of the run's checkpoint")


def _ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    add_members_argument(parser, "each step searches the mean of their log-probabilities")


TASKS = "apps.translation.tasks"
_TRANSLATE_HELP = "translate sentences from stdin or a file (greedy or beam search)"
COMMANDS = {
    "train": Command(f"{TASKS}:train", "train SentencePiece and the model (resumes an "
                     "existing --run-dir)", creates_run=True),
    "evaluate": Command(
        f"{TASKS}:evaluate",
        "BLEU (sacrebleu, detokenised) and sentences/s, greedy and beam; attention heatmaps",
        evaluate_split_argument,
    ),
    "predict": Command(f"{TASKS}:translate", _TRANSLATE_HELP, _translate_arguments),
    "export": Command(f"{TASKS}:export", "write a SavedModel (strings in, translations out)",
                      export_arguments),
    "translate": Command(f"{TASKS}:translate", _TRANSLATE_HELP + " (the same as predict)",
                         _translate_arguments),
    "ensemble": Command(
        f"{TASKS}:create_ensemble",
        "pool trained runs that share vocabularies (then evaluate/translate/export --run-dir it)",
        _ensemble_arguments,
        creates_run=True,
        scopes=ENSEMBLE_SCOPES,
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
