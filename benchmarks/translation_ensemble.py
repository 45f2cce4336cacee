"""Multi30k English->German: an ensemble of translators trained one after another within
the task's 90-minute budget, then scored on the validation split.

    python -m benchmarks.translation_ensemble [--budget-minutes 90] [--member-minutes 44]

Each member is the README's single model (2-layer BiGRU encoder, Bahdanau-attention GRU
decoder, separate 6,000-piece SentencePiece models on lowercased text, `mixed_bfloat16`,
"epochs" of 125 steps, LR halving on a BLEU plateau) with its own seed and a wall-time cap
of `--member-minutes`; `benchmarks.ensemble_members` keeps their summed training time
within the budget. Members after the first start from the first member's SentencePiece
models (an ensemble's members must share them). The ensemble (`python -m apps.translation
ensemble`) searches the mean of the members' log-probabilities at each step; it is
evaluated with greedy search and beam 5 and its figures (and each member's) are merged
into benchmarks/results/translation.json by `benchmarks.translation` under `ensemble_*`
and `ensemble_member_<i>_*`.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import shutil
import sys
from pathlib import Path

from apps.common.run_dir import RunDir
from apps.translation.__main__ import main
from benchmarks import translation
from benchmarks.ensemble_members import train_members

DATA_DIR = Path("/work/shared/data/multi30k")

_COMMON = (
    "--lowercase true --vocab-size 6000 --vocabulary separate --mixed-precision mixed_bfloat16"
    " --steps-per-epoch 125 --batch-size 2048 --learning-rate 2e-3 --epochs 200"
)
#: seed of each member, in training order.
SEEDS = [1234, 1235, 1236, 1237]


def data_flags(data_dir: Path) -> list[str]:
    return [
        "--train-source", str(data_dir / "train.en.gz"),
        "--train-target", str(data_dir / "train.de.gz"),
        "--valid-source", str(data_dir / "val.en.gz"),
        "--valid-target", str(data_dir / "val.de.gz"),
    ]  # fmt: skip


def member_arguments(index: int, data: list[str], member_minutes: float, run_dir: Path) -> list[str]:
    return [
        "train",
        "--run-dir",
        str(run_dir),
        *data,
        "--seed",
        str(SEEDS[index]),
        "--max-train-minutes",
        f"{member_minutes:g}",
        *shlex.split(_COMMON),
    ]


def share_vocabularies(run_dir: Path, trained: list[Path]) -> None:
    """Gives a member the first member's SentencePiece models (training reuses them)."""
    if trained and not RunDir(run_dir).vocab_dir.exists():
        shutil.copytree(RunDir(trained[0]).vocab_dir, RunDir(run_dir).vocab_dir)


def run(
    budget_minutes: float,
    member_minutes: float,
    data: list[str],
    run_root: Path,
    results: Path = translation.RESULTS,
    conditions: str = "",
    command: str | None = None,
) -> dict:
    arguments = [
        functools.partial(member_arguments, index, data, member_minutes)
        for index in range(len(SEEDS))
    ]
    members = train_members(
        budget_minutes, arguments, run_root, main, "valid_bleu_beam1", "train_wall_time_s",
        prepare=share_vocabularies,
    )  # fmt: skip
    ensemble_dir = run_root / "ensemble"
    main(["ensemble", "--run-dir", str(ensemble_dir), "--members", *map(str, members)])
    main(["evaluate", "--run-dir", str(ensemble_dir), "--beam-width", "5"])
    named = [f"ensemble={ensemble_dir}"] + [
        f"ensemble_member_{index + 1}={member}" for index, member in enumerate(members)
    ]
    flags = [flag for name in named for flag in ("--run", name)]
    return translation.main(
        [*flags, "--output", str(results), *(["--conditions", conditions] if conditions else [])],
        command=command,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=90.0)
    parser.add_argument("--member-minutes", type=float, default=44.0,
                        help="wall-time cap of each member's training")
    parser.add_argument("--data-dir", default=str(DATA_DIR),
                        help="folder with train.{en,de}.gz and val.{en,de}.gz")
    parser.add_argument("--run-root", default="runs/translation_ensemble")
    parser.add_argument("--results-file", default=str(translation.RESULTS))
    parser.add_argument("--conditions", default="", help="what shared the machine")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    figures = run(
        args.budget_minutes,
        args.member_minutes,
        data_flags(Path(args.data_dir)),
        Path(args.run_root),
        Path(args.results_file),
        args.conditions,
        "python -m benchmarks.translation_ensemble " + shlex.join(sys.argv[1:]),
    )
    print(f"ensemble val BLEU beam 5: {figures['ensemble_valid_bleu_beam5']}")
