"""IMDB: an ensemble of small, diverse classifiers trained one after another within a
wall-time budget, then scored on the whole test split.

    python -m benchmarks.sentiment_ensemble [--budget-minutes 45] [--data-dir DIR]

Members alternate word and SentencePiece tokenisers, GRU and LSTM cells, vocabulary
sizes and seeds (each seed also carves its own validation tenth, on which that member's
best epoch is chosen), trained by `benchmarks.ensemble_members` within the budget (their
summed training time, data loading and tokeniser training included). The ensemble averages the
members' probabilities (`python -m apps.sentiment ensemble`); its test accuracy and each
member's are merged into benchmarks/results/sentiment.json under `ensemble_*`.
"""

from __future__ import annotations

import argparse
import functools
import shlex
from pathlib import Path

from apps.sentiment.__main__ import main
from benchmarks import results_file
from benchmarks.ensemble_members import train_members

RESULTS = Path(__file__).resolve().parent / "results" / "sentiment.json"
DATA_DIR = "/work/shared/data/imdb"

_COMMON = "--units 64 --embedding-dropout 0.5 --epochs 2 --verbose 2"
_WORDS = "--tokenizer words --vocab-size {vocab}"
_PIECES = "--tokenizer sentencepiece --sentencepiece-type {kind} --vocab-size {vocab}"
#: (tokeniser options, cell) of each member, in training order.
MEMBERS = [
    (_WORDS.format(vocab=15000), "gru"),
    (_PIECES.format(kind="unigram", vocab=16000), "gru"),
    (_WORDS.format(vocab=15000), "lstm"),
    (_PIECES.format(kind="bpe", vocab=16000), "gru"),
    (_WORDS.format(vocab=25000), "gru"),
    (_PIECES.format(kind="unigram", vocab=8000), "gru"),
    (_WORDS.format(vocab=15000), "gru"),
    (_PIECES.format(kind="unigram", vocab=16000), "lstm"),
    (_WORDS.format(vocab=20000), "lstm"),
    (_PIECES.format(kind="bpe", vocab=8000), "gru"),
]


def member_arguments(index: int, data_dir: str, run_dir: Path) -> list[str]:
    tokens, cell = MEMBERS[index]
    return [
        "train",
        "--run-dir",
        str(run_dir),
        "--data-dir",
        data_dir,
        "--cell",
        cell,
        "--seed",
        str(1234 + index),
        *shlex.split(tokens),
        *shlex.split(_COMMON),
    ]


def run(budget_minutes: float, data_dir: str, run_root: Path, results: Path = RESULTS) -> dict:
    arguments = [
        functools.partial(member_arguments, index, data_dir) for index in range(len(MEMBERS))
    ]
    members = train_members(budget_minutes, arguments, run_root, main, "validation_accuracy")
    ensemble_dir = run_root / "ensemble"
    main(["ensemble", "--run-dir", str(ensemble_dir), "--members", *map(str, members)])
    metrics = main(
        [
            "evaluate",
            "--run-dir",
            str(ensemble_dir),
            "--split",
            "test",
            "--results-file",
            str(results),
            "--results-name",
            "ensemble",
        ]
    )
    with results_file.locked(results):
        figures = results_file.read(results)
        figures["ensemble_budget_minutes"] = budget_minutes
        figures["ensemble_benchmark_command"] = shlex.join(
            ["python", "-m", "benchmarks.sentiment_ensemble", "--budget-minutes", f"{budget_minutes:g}"]
        )
        results_file.write(results, figures)
    return metrics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=45.0)
    parser.add_argument("--data-dir", default=DATA_DIR, help="IMDB files (or the aclImdb folder)")
    parser.add_argument("--run-root", default="runs/sentiment_ensemble")
    parser.add_argument("--results-file", default=str(RESULTS))
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    metrics = run(args.budget_minutes, args.data_dir, Path(args.run_root), Path(args.results_file))
    print(f"ensemble test accuracy: {metrics['test_accuracy']:.4f}")
