"""The final tagging recipes, fixed in advance on dev: each trains within its 60-minute
budget on the 2-core machine, then is scored on dev and test together.

    python -m benchmarks.tagging_final pos|ner [--run-root runs/tagging_final_TASK]
        [--conditions "what else ran on the machine"]

A recipe is an ensemble whose members and pooling are fixed here (`RECIPES`): members are
trained one after another (`benchmarks.ensemble_members`: their summed training time
stays within the budget), pooled log-linearly (`python -m apps.tagging ensemble`) and the
pool is evaluated on dev, then on test. The one test scoring of each run is recorded with
the dev scores through `benchmarks.heldout.record`, which counts it: the figures go to
benchmarks/results/tagging.json under `<task>_final_dev_*` / `<task>_final_test_*`
(overall, on the words or mentions unseen in training, and each member's), with the
command, budget, conditions and machine, and `test_evaluations` counts every test
scoring the file has seen. Trained members are reused when the command is rerun (the
test scoring is counted again).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from apps.common.ensemble import member_config
from apps.common.run_dir import RunDir
from apps.tagging.__main__ import main
from apps.tagging.config import TaggingConfig
from apps.tagging.tasks import command_line
from benchmarks import heldout, tagging_ensemble
from benchmarks.ensemble_members import train_members

RESULTS = Path(__file__).resolve().parent / "results" / "tagging.json"
CONLL = Path("/work/shared/data/conll2003")
EWT = Path("/work/shared/data/ud_english_ewt")

#: The NER members: the README's BiLSTM-CRF with the levers chosen on dev
#: (benchmarks/tagging_levers.py), LSTM and GRU cells in turn, each its own seed.
NER_OPTIONS = (
    "--task ner --epochs 200 --early-stopping-patience 100 --lr-schedule constant --verbose 2"
    " --ema-momentum 0.999"
)
NER_MEMBERS = [("lstm", 1234), ("gru", 1235), ("lstm", 1236)]


def ner_member_arguments(index: int, run_dir: Path, member_minutes: float) -> list[str]:
    cell, seed = NER_MEMBERS[index]
    return [
        "train",
        "--run-dir",
        str(run_dir),
        "--train-file",
        str(CONLL / "eng.train"),
        "--dev-file",
        str(CONLL / "eng.testa"),
        "--cell",
        cell,
        "--seed",
        str(seed),
        "--max-train-minutes",
        f"{member_minutes:g}",
        *shlex.split(NER_OPTIONS),
    ]


def pos_member_arguments(index: int, run_dir: Path, member_minutes: float) -> list[str]:
    """The members of the UPOS ensemble measured on dev by `benchmarks.tagging_ensemble`."""
    return tagging_ensemble.member_arguments(
        index, str(EWT / "en_ewt-ud-train.conllu.gz"), str(EWT / "en_ewt-ud-dev.conllu"), member_minutes, run_dir
    )


@dataclasses.dataclass(frozen=True)
class Recipe:
    member_arguments: Callable[[int, Path, float], list[str]]
    members: int
    member_minutes: float
    budget_minutes: float
    decoding: str
    metric: str  # f1 (entities) or accuracy (tokens)
    test_file: Path
    description: str


RECIPES = {
    "pos": Recipe(
        pos_member_arguments,
        members=3,
        member_minutes=19.5,
        budget_minutes=60.0,
        decoding="posterior",
        metric="accuracy",
        test_file=EWT / "en_ewt-ud-test.conllu",
        description="3 x (2x BiLSTM-200 / BiGRU-200 + char BiLSTM-50 + CRF, word dropout 0.2, weight "
        "averaging), 19.5 min each, log-linear pool decoded by its marginals",
    ),
    "ner": Recipe(
        ner_member_arguments,
        members=3,
        member_minutes=19.5,
        budget_minutes=60.0,
        decoding="viterbi",
        metric="f1",
        test_file=CONLL / "eng.testb",
        description="3 x (BiLSTM-100 / BiGRU-100 + char BiLSTM-25 + CRF, BIOES, casing feature, word dropout "
        "0.05, weight averaging), 19.5 min each, log-linear pool, Viterbi",
    ),
}


def _figures(metrics: dict, split: str, metric: str) -> dict:
    """The split's scores of an ensemble evaluation, keys without the split prefix."""
    names = [metric, f"unseen_{metric}", "accuracy", "unseen_accuracy", "unseen_tokens"]
    if metric == "f1":
        names += ["precision", "recall", "gold_entities", "unseen_precision", "unseen_recall", "unseen_gold_entities"]
    figures = {name: metrics[f"{split}_{name}"] for name in names if f"{split}_{name}" in metrics}
    figures[f"member_{metric}"] = metrics[f"member_{split}_{metric}"]
    figures[f"member_unseen_{metric}"] = metrics[f"member_{split}_unseen_{metric}"]
    return figures


def run(task: str, run_root: Path, results: Path = RESULTS, conditions: str = "") -> dict:
    """Trains the recipe of `task` (reusing trained members), scores dev and test, and
    records both with `heldout.record`; returns the results file's content."""
    recipe = RECIPES[task]
    start = time.monotonic()
    arguments = [
        functools.partial(recipe.member_arguments, index, member_minutes=recipe.member_minutes)
        for index in range(recipe.members)
    ]
    members = train_members(recipe.budget_minutes, arguments, run_root, main, f"dev_{recipe.metric}")
    ensemble_dir = run_root / "ensemble"
    main(["ensemble", "--run-dir", str(ensemble_dir), "--decoding", recipe.decoding, "--members", *map(str, members)])
    dev = main(["evaluate", "--run-dir", str(ensemble_dir), "--split", "valid"])
    test = main(["evaluate", "--run-dir", str(ensemble_dir), "--split", "test", "--test-file", str(recipe.test_file)])
    trained = [RunDir(member).read_metrics() for member in members]
    return heldout.record(
        results,
        f"{task}_final",
        dev=_figures(dev, "dev", recipe.metric),
        test=_figures(test, "test", recipe.metric),
        command=f"python -m benchmarks.tagging_final {task}",
        budget_minutes=recipe.budget_minutes,
        conditions=conditions,
        extra={
            "recipe": recipe.description,
            "members": len(members),
            "member_commands": [command_line(member_config(member, TaggingConfig)) for member in members],
            "member_epochs": [metrics["epochs_trained"] for metrics in trained],
            "train_wall_time_s": round(sum(metrics["train_wall_time_s"] for metrics in trained), 1),
            "train_cpu_time_s": round(sum(metrics["train_cpu_time_s"] for metrics in trained), 1),
            "parameters": sum(metrics["parameters"] for metrics in trained),
            "total_wall_time_s": round(time.monotonic() - start, 1),  # with data loading and scoring
            "test_file": str(recipe.test_file),
        },
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=sorted(RECIPES))
    parser.add_argument("--run-root", default="", help="default: runs/tagging_final_TASK")
    parser.add_argument("--results-file", default=str(RESULTS))
    parser.add_argument("--conditions", default="", help="recorded with the figures (e.g. the machine's load)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    figures = run(args.task, Path(args.run_root or f"runs/tagging_final_{args.task}"), Path(args.results_file),
                  args.conditions)  # fmt: skip
    metric = RECIPES[args.task].metric
    print(
        f"{args.task}: dev {metric} {100 * figures[f'{args.task}_final_dev_{metric}']:.2f}, "
        f"test {100 * figures[f'{args.task}_final_test_{metric}']:.2f} "
        f"(test evaluations in the file: {figures['test_evaluations']})"
    )
