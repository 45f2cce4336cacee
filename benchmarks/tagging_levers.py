"""CoNLL-2003 NER: generalisation levers, each alone on the README's single-model recipe,
scored on dev overall and on the mentions unseen in training.

    python -m benchmarks.tagging_levers [--levers baseline no_casing ...] [--epochs 20]

Every lever trains the same BiLSTM-100 + character BiLSTM-25 + CRF (BIOES, casing
feature, lower-cased word vectors, word dropout 0.05, Adam 1e-3 without decay) for the
same number of epochs, with one option changed (`LEVERS`). Epochs, not minutes, make the
budget equal: the 2-core development machine is shared, and its load changes the time
an epoch takes several-fold within an hour; each lever's wall and CPU time are recorded
beside its scores. Every lever trains in float32 (`--mixed-precision float32`), so that
levers measured on machines with and without bfloat16 units compare. The best epoch on
dev is kept, as in every run of the app. A trained lever's run directory is reused, not
retrained. Figures go to benchmarks/results/tagging.json under `ner_lever_<name>_*`:
`f1` (all dev mentions) and `unseen_f1` (mentions whose token sequence occurs nowhere in
the training file), with precision, recall, counts and times.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from apps.common.run_dir import RunDir
from apps.tagging.__main__ import main
from benchmarks import host, results_file

RESULTS = Path(__file__).resolve().parent / "results" / "tagging.json"
DATA_DIR = Path("/work/shared/data/conll2003")
TRAIN_FILE = DATA_DIR / "eng.train"
DEV_FILE = DATA_DIR / "eng.testa"

RECIPE = "--task ner --early-stopping-patience 10 --lr-schedule constant --mixed-precision float32 --verbose 2"

#: Each lever: the options that differ from the recipe.
LEVERS = {
    "baseline": "",
    "no_casing": "--casing-embedding-size 0 --lowercase false",  # without the lever
    "char_units_50": "--char-units 50",
    "word_dropout_20": "--word-dropout 0.2",
    "rare_word_dropout": "--rare-word-dropout 1.0",  # singletons replaced half the time
    "char_lm": "--char-lm-units 128 --char-lm-epochs 5",  # trained first, on the training text
    "weight_averaging": "--ema-momentum 0.999",  # dev scores, checkpoints of the moving average
}


def lever_arguments(name: str, epochs: int, train_file: str, dev_file: str, run_dir: Path) -> list[str]:
    """The `train` command line of one lever."""
    if name not in LEVERS:
        raise ValueError(f"unknown lever {name!r}; choose from {', '.join(LEVERS)}")
    return [
        "train",
        "--run-dir",
        str(run_dir),
        "--train-file",
        train_file,
        "--dev-file",
        dev_file,
        "--epochs",
        str(epochs),
        *shlex.split(RECIPE),
        *shlex.split(LEVERS[name]),
    ]


def run(
    names: list[str],
    epochs: int,
    train_file: str,
    dev_file: str,
    run_root: Path,
    results: Path = RESULTS,
    conditions: str = "",
) -> dict[str, dict]:
    """Trains (or reuses) each lever and merges its dev scores into `results`."""
    scores = {}
    for name in names:
        run_dir = run_root / name
        arguments = lever_arguments(name, epochs, train_file, dev_file, run_dir)
        if "dev_f1" not in RunDir(run_dir).read_metrics():
            main(arguments)
        command = shlex.join(["python", "-m", "benchmarks.tagging_levers", "--levers", name, "--epochs", str(epochs)])
        scores[name] = main(
            [
                "evaluate",
                "--run-dir",
                str(run_dir),
                "--split",
                "valid",
                "--results-file",
                str(results),
                "--results-prefix",
                f"ner_lever_{name}",
                "--results-command",
                command,
            ]
        )
        note(results, f"ner_lever_{name}", conditions)
    return scores


def note(path: Path, prefix: str, conditions: str) -> None:
    """Adds `<prefix>_conditions` and `<prefix>_machine` (CPU model and flags) to `path`."""
    with results_file.locked(path):
        figures = results_file.read(path)
        figures[f"{prefix}_machine"] = host.machine()
        if conditions:
            figures[f"{prefix}_conditions"] = conditions
        results_file.write(path, figures)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--epochs", type=int, default=20, help="training epochs of every lever")
    parser.add_argument("--train-file", default=str(TRAIN_FILE))
    parser.add_argument("--dev-file", default=str(DEV_FILE))
    parser.add_argument("--run-root", default="runs/tagging_levers")
    parser.add_argument("--results-file", default=str(RESULTS))
    parser.add_argument("--conditions", default="", help="recorded with the figures (e.g. the machine's load)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    for lever, metrics in run(
        args.levers, args.epochs, args.train_file, args.dev_file, Path(args.run_root), Path(args.results_file),
        args.conditions,
    ).items():  # fmt: skip
        print(f"{lever}: dev F1 {100 * metrics['dev_f1']:.2f}, unseen {100 * metrics['dev_unseen_f1']:.2f}")
