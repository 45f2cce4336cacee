"""`python -m apps.language_model train|evaluate|sample|export`: RNN language models."""

from __future__ import annotations

import argparse

from apps.common.cli import Command, main_guard, run_app
from apps.language_model import tasks
from apps.language_model.config import LanguageModelConfig


def _sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", default="", help=r"text to continue (\n for a newline)")
    parser.add_argument("--num-tokens", type=int, default=200, help="tokens to generate")
    parser.add_argument("--temperature", type=float, default=0.8, help="0: greedy")
    parser.add_argument(
        "--top-k", type=int, default=0, help="sample among the k most probable; 0: all"
    )
    parser.add_argument("--sample-seed", type=int, default=-1, help="seed of the draws; -1: random")
    parser.add_argument("--export-dir", default="", help="generate with this SavedModel instead")


COMMANDS = {
    "train": Command(tasks.train, "train a language model and evaluate it", creates_run=True),
    "evaluate": Command(
        tasks.evaluate, "perplexity / bits per char over whole splits, state carried"
    ),
    "sample": Command(
        tasks.sample, "generate text from a prompt, streaming tokens", _sample_arguments
    ),
    "export": Command(
        tasks.export, "write a SavedModel that generates text into RUN_DIR/export/<version>"
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
