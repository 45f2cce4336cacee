"""`python -m apps.tagging train|evaluate|predict|export|ensemble|compare --task ner|chunk|pos`."""

from __future__ import annotations

import argparse

from apps.common.cli import Command, evaluate_split_argument, export_arguments, main_guard, run_app
from apps.common.ensemble import ENSEMBLE_SCOPES, add_members_argument
from apps.tagging.config import COMPARE_VARIANTS, TaggingConfig


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    evaluate_split_argument(parser)
    _results_arguments(parser)
    parser.add_argument("--results-command", default="",
                        help="the command recorded with the figures (default: the run's train "
                        "or ensemble command)")


def _results_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results-file", default="",
                        help="also merge the figures into this JSON (e.g. "
                        "benchmarks/results/tagging.json)")
    parser.add_argument("--results-prefix", default="",
                        help="key prefix there (default: TASK_SPLIT)")


def _ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    add_members_argument(parser, "tagged with the Viterbi path of their mean scores")


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text", action="append", help="a sentence to tag (repeatable)")
    parser.add_argument("--input-file", default="", help="raw text, one sentence per line")
    parser.add_argument("--pretokenized", action="store_true",
                        help="split on whitespace only (the text is already tokenised)")
    parser.add_argument("--output-scheme", default="",
                        choices=("", "bio", "iob2", "bioes", "iobes", "iob1", "io"),
                        help="print entity tags in this scheme (bio, bioes, iob1, io); "
                        "default: as trained")
    parser.add_argument("--export-dir", default="",
                        help="tag with this SavedModel instead of the run's checkpoint")


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", nargs="*", default=None, metavar="NAME=KEY:VALUE,...",
                        help="configurations to compare, e.g. gru-crf=cell:gru "
                        f"lstm-softmax=decoder:softmax (default: {' '.join(COMPARE_VARIANTS)})")
    _results_arguments(parser)


TASKS = "apps.tagging.tasks"
COMMANDS = {
    "train": Command(f"{TASKS}:train", "train a tagger and score it on dev (resumes an "
                     "existing --run-dir)", creates_run=True),
    "evaluate": Command(f"{TASKS}:evaluate", "score a trained run (entity P/R/F1 or token "
                        "accuracy)", _evaluate_arguments),
    "predict": Command(f"{TASKS}:predict", "tag raw text and print it in CoNLL format",
                       _predict_arguments, requires_run=False),
    "export": Command(f"{TASKS}:export", "write a SavedModel (token strings in, tags out) into "
                      "RUN_DIR/export/<n>", export_arguments),
    "ensemble": Command("apps.common.ensemble:create", "pool trained runs log-linearly (then "
                        "evaluate/predict/export --run-dir it)", _ensemble_arguments,
                        creates_run=True, scopes=ENSEMBLE_SCOPES),
    "compare": Command(f"{TASKS}:compare", "train several variants (decoder, cell) and print "
                       "the dev table", _compare_arguments, creates_run=True),
}


def main(argv: list[str] | None = None):
    return run_app(
        "tagging",
        TaggingConfig,
        COMMANDS,
        argv,
        description="POS tagging, chunking and NER with bidirectional recurrent networks, "
        "character features and a CRF (IO/BIO/BIOES).",
    )


if __name__ == "__main__":
    main_guard(main)
