"""Quality and decoding-speed figures of apps/translation, written to
benchmarks/results/translation.json (apps/translation/README.md renders its tables from
it: `python -m benchmarks.summary --write`, rows declared in `benchmarks/tables.py`).

    python -m benchmarks.translation --run main=runs/translation/multi30k_gru \
        [--run teacher_forcing=RUN --run scheduled_sampling=RUN] [--evaluate]
    python -m benchmarks.translation final [--conditions TEXT]    # val and test2016

For every named run directory (made by `python -m apps.translation train`), the figures
of its metrics.json (validation BLEU with greedy search and beam 5, sacrebleu signature,
sentences/s and sentences per CPU-second for both, training wall time) are flattened
under the run's name, next to the command, the date, the wall time and the machine.
`--evaluate` first reruns `python -m apps.translation evaluate` on each run (in this
process), so that speeds are measured in one session and comparable as ratios.
The figures of the runs named are replaced; those of other names already in the file are
kept, each with its own `<name>_command`, `<name>_date` and `<name>_conditions` (what
shared the machine, from `--conditions`).

`final` trains the recipe fixed on the validation split (`FINAL_RECIPE`, the README's
`drop04_88`, in float32 on CPUs without AMX / AVX512-BF16) within `FINAL_BUDGET_MINUTES`
of training, scores its best checkpoint on val and on test2016 with the app's own
`evaluate` (sacrebleu, lowercased, 13a; greedy and beam 5), and records both side by
side through `benchmarks.heldout.record` under `FINAL_NAME`, counting the test scoring.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from benchmarks import heldout, results_file
from benchmarks.host import run_precision

RESULTS = Path(__file__).resolve().parent / "results" / "translation.json"
FIGURES = (
    "valid_bleu_beam1",
    "valid_bleu_beam5",
    "valid_sentences_per_s_beam1",
    "valid_sentences_per_s_beam5",
    "valid_sentences_per_cpu_s_beam1",
    "valid_sentences_per_cpu_s_beam5",
    "best_val_bleu_greedy",
    "epochs_trained",
    "train_wall_time_s",
    "parameters",
    "train_examples",
    "lowercase",
    "length_penalty",
)


def _named_run(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=RUN_DIR, got {text!r}")
    return name, Path(path)


def collect(runs: list[tuple[str, Path]], evaluate: bool) -> dict:
    from apps.common.run_dir import RunDir
    from apps.translation.__main__ import main

    results: dict = {}
    for name, run_dir in runs:
        if not (run_dir / "config.json").exists():
            raise FileNotFoundError(f"{run_dir}: not a run directory of apps.translation")
        if evaluate:
            main(["evaluate", "--run-dir", str(run_dir), "--beam-width", "5"])
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        metrics.update(RunDir(run_dir).latest_evaluation("valid") or {})  # evaluate's figures
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        for key in FIGURES:
            if key in metrics:
                results[f"{name}_{key}"] = metrics[key]
        results[f"{name}_scheduled_sampling"] = config.get("scheduled_sampling_type") or "none"
        results.setdefault("bleu_signature", metrics.get("bleu_signature"))
        results[f"{name}_run_dir"] = str(run_dir)
    return results


_PER_RUN = ("command", "date", "wall_time_s")


def load_results(path: Path) -> dict:
    """The results file, with the per-invocation keys of files written before they were
    kept per run (`command`, `date`, `wall_time_s` of a file holding only `main`) moved
    under the run's name."""
    results = results_file.read(path)
    names = _runs_in(results)
    if len(names) == 1:
        (name,) = names
        for key in _PER_RUN:
            if key in results:
                results[f"{name}_{key}"] = results.pop(key)
    return results


def _runs_in(results: dict) -> set[str]:
    return {key[: -len("_run_dir")] for key in results if key.endswith("_run_dir")}


def merge(previous: dict, names: list[str], update: dict) -> dict:
    """`previous` without the keys of the runs in `names`, then `update`."""
    runs = _runs_in(previous) | set(names)
    kept = {
        key: value for key, value in previous.items() if results_file.owner(key, runs) not in names
    }
    return {**kept, **update}


DATA_ROOT = os.environ.get("RNN_SUITE_DATA", "/work/shared/data")
FINAL_NAME = "final"
FINAL_BUDGET_MINUTES = 88.0
#: drop04_88's flags with `--mixed-precision auto` for its mixed_bfloat16: float32 on CPUs
#: without AMX / AVX512-BF16, where bfloat16 is slower.
FINAL_RECIPE = (
    "--lowercase true --vocab-size 6000 --vocabulary separate --mixed-precision auto "
    "--steps-per-epoch 125 "
    "--batch-size 2048 --learning-rate 2e-3 --epochs 200 --seed 1234 --ema-momentum 0.998 "
    "--lr-decay-patience 2 --dropout 0.4 --beam-width 5"
)
_FINAL_FIGURES = ("bleu_beam", "sentences_per_s_beam")  # greedy and the recipe's beam


def _split_figures(metrics: dict, split: str) -> dict:
    prefix = f"{split}_"
    return {
        key[len(prefix) :]: value
        for key, value in metrics.items()
        if key.startswith(prefix) and key[len(prefix) :].startswith(_FINAL_FIGURES)
    }


def multi30k_flags(data_root: str) -> list[str]:
    folder = f"{data_root}/multi30k"
    return [
        "--train-source", f"{folder}/train.en.gz", "--train-target", f"{folder}/train.de.gz",
        "--valid-source", f"{folder}/val.en.gz", "--valid-target", f"{folder}/val.de.gz",
    ]  # fmt: skip


def multi30k_test_flags(data_root: str) -> list[str]:
    folder = f"{data_root}/multi30k"
    return [
        "--test-source", f"{folder}/test_2016_flickr.en.gz",
        "--test-target", f"{folder}/test_2016_flickr.de.gz",
    ]  # fmt: skip


def final(
    data: list[str],
    test: list[str],
    run_dir: Path,
    conditions: str,
    command: str,
    recipe: str = FINAL_RECIPE,
    budget_minutes: float = FINAL_BUDGET_MINUTES,
    output: Path = RESULTS,
) -> dict:
    """Trains `recipe` within `budget_minutes`, scores val and test with its best
    checkpoint and records both (one more test evaluation in `output`)."""
    from apps.translation.__main__ import main as app

    train_argv = ["train", "--run-dir", str(run_dir), *data, *shlex.split(recipe)]
    train_argv += ["--max-train-minutes", f"{budget_minutes:g}"]
    trained = app(train_argv)
    test_argv = ["evaluate", "--run-dir", str(run_dir), "--split", "test", *test]
    scored = app(test_argv)
    return heldout.record(
        output,
        FINAL_NAME,
        dev=_split_figures(trained, "valid"),
        test=_split_figures(scored, "test"),
        command=command,
        budget_minutes=budget_minutes,
        conditions=conditions,
        extra={
            "dev_split": "multi30k val (1,014 sentences)",
            "test_split": "multi30k test2016 flickr (1,000 sentences)",
            "bleu_signature": scored["bleu_signature"],
            "precision": run_precision(run_dir),
            "epochs_trained": trained["epochs_trained"],
            "train_wall_time_s": trained["train_wall_time_s"],
            "best_val_bleu_greedy": trained.get("best_val_bleu_greedy"),
            "parameters": trained["parameters"],
            "train_command": "python -m apps.translation " + shlex.join(train_argv),
            "test_command": "python -m apps.translation " + shlex.join(test_argv),
            "run_dir": str(run_dir),
        },
    )


def final_main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.translation final",
        description="train the fixed recipe, score val and test2016 together, record both",
    )
    parser.add_argument("--data-root", default=DATA_ROOT)
    parser.add_argument("--run-dir", default="runs/translation/final")
    parser.add_argument("--conditions", default="", help="what shared the machine")
    args = parser.parse_args(argv)
    results = final(
        multi30k_flags(args.data_root),
        multi30k_test_flags(args.data_root),
        Path(args.run_dir),
        args.conditions,
        "python -m benchmarks.translation final " + shlex.join(argv),
    )
    print(
        json.dumps({k: v for k, v in results.items() if k.startswith(f"{FINAL_NAME}_")}, indent=2)
    )
    return results


def main(argv: list[str] | None = None, command: str | None = None) -> dict:
    """`final ...` runs `final_main`; otherwise collects and writes the figures of the
    named runs; `command` (default: this module's command line) is recorded as the runs'
    `<name>_command`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["final"]:
        return final_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.translation", description=__doc__)
    parser.add_argument(
        "--run", action="append", type=_named_run, required=True, help="NAME=RUN_DIR"
    )
    parser.add_argument("--evaluate", action="store_true", help="rerun evaluate on every run first")
    parser.add_argument("--conditions", default="", help="what shared the machine during the runs")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    figures = collect(args.run, args.evaluate)
    command = command or "python -m benchmarks.translation " + shlex.join(argv)
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    wall = round(time.perf_counter() - started, 1)
    for name, _ in args.run:
        figures.update(
            {f"{name}_command": command, f"{name}_date": date, f"{name}_wall_time_s": wall}
        )
        if args.conditions:
            figures[f"{name}_conditions"] = args.conditions
    output = Path(args.output)
    names = [name for name, _ in args.run]
    with results_file.locked(output):
        results = merge(load_results(output), names, figures)
        results.update(
            dataset="multi30k en-de (WMT16 multimodal task 1), validation split (1,014 sentences)",
            machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
            note="wall times on the 2 CPU cores, otherwise idle unless a run's `conditions` says "
            "what shared them; speeds compare as ratios within one invocation",
        )
        results_file.write(output, results)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
