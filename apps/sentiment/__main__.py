"""`python -m apps.sentiment train|evaluate|predict|export|ensemble`: IMDB sentiment."""

from __future__ import annotations

import argparse

from apps.common.cli import Command, evaluate_split_argument, export_arguments, main_guard, run_app
from apps.common.ensemble import ENSEMBLE_SCOPES, add_members_argument
from apps.sentiment.config import SentimentConfig


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    evaluate_split_argument(parser)
    parser.add_argument("--results-file", default="",
                        help="also merge the figures into this JSON (a benchmarks/results file)")
    parser.add_argument("--results-name", default="",
                        help="prefix of the figures' keys in --results-file")


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", help="reviews to classify")
    parser.add_argument("--input-file", default="", help="a file of reviews, one per line")
    parser.add_argument("--export-dir", default="",
                        help="predict with this SavedModel instead of the run's checkpoint")


def _ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    add_members_argument(parser, "their probabilities are averaged")


TASKS = "apps.sentiment.tasks"
COMMANDS = {
    "train": Command(f"{TASKS}:train", "train a classifier (resumes an existing --run-dir)",
                     creates_run=True),
    "evaluate": Command(f"{TASKS}:evaluate", "accuracy on the validation reviews or the test "
                        "split", _evaluate_arguments),
    "predict": Command(
        f"{TASKS}:predict",
        "positive-class probability of reviews (from --run-dir or --export-dir)",
        _predict_arguments,
        requires_run=False,
    ),
    "export": Command(f"{TASKS}:export", "write a SavedModel (raw strings in) into "
                      "RUN_DIR/export/<version>", export_arguments),
    "ensemble": Command(
        "apps.common.ensemble:create",
        "average the probabilities of trained runs (then evaluate/predict/export --run-dir it)",
        _ensemble_arguments,
        creates_run=True,
        scopes=ENSEMBLE_SCOPES,
    ),
}


def main(argv: list[str] | None = None):
    return run_app(
        "sentiment",
        SentimentConfig,
        COMMANDS,
        argv,
        description="IMDB sentiment classification with the suite's recurrent cells.",
    )


if __name__ == "__main__":
    main_guard(main)
