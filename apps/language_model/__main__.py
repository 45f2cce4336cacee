"""`python -m apps.language_model train|evaluate|predict|export|sample`: RNN language models."""

from __future__ import annotations

import argparse

from apps.common.cli import (
    Command,
    evaluate_split_argument,
    export_arguments,
    main_guard,
    number_at_least,
    run_app,
)
from apps.language_model.config import LanguageModelConfig


def _sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", default="", help=r"text to continue (\n for a newline)")
    parser.add_argument("--num-tokens", type=number_at_least(1), default=200,
                        help="tokens to generate (default: 200)")
    parser.add_argument("--temperature", type=number_at_least(0.0, float), default=0.8,
                        help="softmax temperature of the draws; 0: greedy (default: 0.8)")
    parser.add_argument("--top-k", type=number_at_least(0), default=0,
                        help="draw among the k most probable tokens; 0: all (default: 0)")
    parser.add_argument("--sample-seed", type=number_at_least(-1), default=-1,
                        help="seed of the draws; -1: random (default: -1)")
    parser.add_argument("--export-dir", default="",
                        help="generate with this SavedModel instead of the run's checkpoint")


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", help=r"texts to score (\n for a newline)")
    parser.add_argument("--input-file", default="", help="a file of texts to score, one a line")
    parser.add_argument("--export-dir", default="",
                        help="score with this SavedModel instead of the run's checkpoint")


TASKS = "apps.language_model.tasks"
COMMANDS = {
    "train": Command(f"{TASKS}:train", "train a language model and score it on validation",
                     creates_run=True),
    "evaluate": Command(
        f"{TASKS}:evaluate", "perplexity / bits per char of a whole split, state carried",
        evaluate_split_argument,
    ),
    "predict": Command(
        f"{TASKS}:predict", "log-probability, tokens and perplexity of each given text",
        _predict_arguments, requires_run=False,
    ),
    "sample": Command(
        f"{TASKS}:sample", "generate text from a prompt, streaming tokens", _sample_arguments,
        scopes=("run", "inference"),
    ),
    "export": Command(
        f"{TASKS}:export", "write a SavedModel that scores and generates text into "
        "RUN_DIR/export/<version>", export_arguments
    ),
}


def main(argv: list[str] | None = None):
    return run_app(
        "language_model",
        LanguageModelConfig,
        COMMANDS,
        argv,
        description="Character, word and SentencePiece RNN language models with truncated BPTT.",
    )


if __name__ == "__main__":
    main_guard(main)
