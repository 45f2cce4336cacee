"""UD English EWT UPOS: an ensemble of taggers trained one after another within the
task's 60-minute budget, then scored on dev.

    python -m benchmarks.tagging_ensemble [--budget-minutes 60] [--member-minutes 19.5]
        [--char-encoders lstm,cnn] [--results-prefix pos_dev_ensemble] [--decoding posterior]
        [--seed-offset 100 --run-root runs/tagging_ensemble_replicate]

Each member is the README's best single tagger (2 x BiLSTM-200 + character BiLSTM-50 +
CRF, word dropout 0.2, weight averaging 0.999) with its own seed, alternating LSTM and
GRU cells, character encoders taken in turn from `--char-encoders` (a character CNN
reads words faster than the BiLSTM and errs differently), and a wall-time cap of
`--member-minutes`; `benchmarks.ensemble_members`
keeps their summed training time within the budget. The ensemble (`python -m
apps.tagging ensemble`) decodes the mean of the members' CRF scores (a log-linear pool,
see apps/tagging/ensemble.py; `--decoding posterior` takes the tags of highest pooled
marginal probability instead of the best path); its dev accuracy and each member's are merged into
benchmarks/results/tagging.json under `<results-prefix>_*`.
"""

from __future__ import annotations

import argparse
import functools
import shlex
from pathlib import Path

from apps.tagging.__main__ import main
from benchmarks.ensemble_members import train_members

RESULTS = Path(__file__).resolve().parent / "results" / "tagging.json"
DATA_DIR = Path("/work/shared/data/ud_english_ewt")
TRAIN_FILE = DATA_DIR / "en_ewt-ud-train.conllu.gz"
DEV_FILE = DATA_DIR / "en_ewt-ud-dev.conllu"

_COMMON = (
    "--task pos --word-dropout 0.2 --char-units 50 --units 200 --num-layers 2"
    " --ema-momentum 0.999 --epochs 200 --early-stopping-patience 10 --verbose 2"
)
#: (cell, seed) of each member, in training order.
MEMBERS = [("lstm", 1234), ("gru", 1235), ("lstm", 1236), ("gru", 1237), ("lstm", 1238)]


def member_arguments(
    index: int,
    train_file: str,
    dev_file: str,
    member_minutes: float,
    run_dir: Path,
    char_encoders: tuple[str, ...] = ("lstm",),
    seed_offset: int = 0,
) -> list[str]:
    cell, seed = MEMBERS[index]
    seed += seed_offset
    return [
        "train",
        "--run-dir",
        str(run_dir),
        "--train-file",
        train_file,
        "--dev-file",
        dev_file,
        "--cell",
        cell,
        "--seed",
        str(seed),
        "--char-encoder",
        char_encoders[index % len(char_encoders)],
        "--max-train-minutes",
        f"{member_minutes:g}",
        *shlex.split(_COMMON),
    ]


def run(
    budget_minutes: float,
    member_minutes: float,
    train_file: str,
    dev_file: str,
    run_root: Path,
    results: Path = RESULTS,
    char_encoders: tuple[str, ...] = ("lstm",),
    results_prefix: str = "pos_dev_ensemble",
    decoding: str = "viterbi",
    seed_offset: int = 0,
) -> dict:
    arguments = [
        functools.partial(
            member_arguments,
            index,
            train_file,
            dev_file,
            member_minutes,
            char_encoders=char_encoders,
            seed_offset=seed_offset,
        )
        for index in range(len(MEMBERS))
    ]
    members = train_members(budget_minutes, arguments, run_root, main, "dev_accuracy")
    ensemble_dir = run_root / "ensemble"
    main(["ensemble", "--run-dir", str(ensemble_dir), "--decoding", decoding, "--members", *map(str, members)])
    command = shlex.join(
        [
            "python",
            "-m",
            "benchmarks.tagging_ensemble",
            "--budget-minutes",
            f"{budget_minutes:g}",
            "--member-minutes",
            f"{member_minutes:g}",
            "--char-encoders",
            ",".join(char_encoders),
            "--results-prefix",
            results_prefix,
            *(["--decoding", decoding] if decoding != "viterbi" else []),
            *(["--seed-offset", str(seed_offset)] if seed_offset else []),
        ]
    )
    return main(
        [
            "evaluate",
            "--run-dir",
            str(ensemble_dir),
            "--split",
            "valid",
            "--results-file",
            str(results),
            "--results-prefix",
            results_prefix,
            "--results-command",
            command,
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=60.0)
    parser.add_argument("--member-minutes", type=float, default=19.5,
                        help="wall-time cap of each member's training")
    parser.add_argument("--train-file", default=str(TRAIN_FILE))
    parser.add_argument("--dev-file", default=str(DEV_FILE))
    parser.add_argument("--run-root", default="runs/tagging_ensemble")
    parser.add_argument("--results-file", default=str(RESULTS))
    parser.add_argument("--char-encoders", default="lstm",
                        help="comma-separated character encoders (lstm, cnn) taken in turn by the members")
    parser.add_argument("--results-prefix", default="pos_dev_ensemble",
                        help="key prefix of the figures in the results file")
    parser.add_argument("--decoding", default="viterbi", choices=("viterbi", "posterior"),
                        help="how the pooled distribution is decoded (apps/tagging/ensemble.py)")
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="added to every member's seed: a replicate of the recipe (use a new --run-root)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    metrics = run(
        args.budget_minutes,
        args.member_minutes,
        args.train_file,
        args.dev_file,
        Path(args.run_root),
        Path(args.results_file),
        tuple(args.char_encoders.split(",")),
        args.results_prefix,
        args.decoding,
        args.seed_offset,
    )
    print(f"ensemble dev accuracy: {metrics['dev_accuracy']:.4f}")
