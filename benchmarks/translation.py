"""Quality and decoding-speed figures of apps/translation, written to
benchmarks/results/translation.json (and copied by hand into apps/translation/README.md).

    python -m benchmarks.translation --run main=runs/translation/multi30k_gru \
        [--run teacher_forcing=RUN --run scheduled_sampling=RUN] [--evaluate]

For every named run directory (made by `python -m apps.translation train`), the figures
of its metrics.json (validation BLEU with greedy search and beam 5, sacrebleu signature,
sentences/s and sentences per CPU-second for both, training wall time) are flattened
under the run's name, next to the command, the date, the wall time and the machine.
`--evaluate` first reruns `python -m apps.translation evaluate` on each run (in this
process), so that speeds are measured in one session and comparable as ratios.
The figures of the runs named are replaced; those of other names already in the file are
kept, each with its own `<name>_command`, `<name>_date` and `<name>_conditions` (what
shared the machine, from `--conditions`).
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

from benchmarks import results_file

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


def main(argv: list[str] | None = None, command: str | None = None) -> dict:
    """Collects and writes the figures; `command` (default: this module's command line)
    is recorded as the runs' `<name>_command`."""
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
    command = command or "python -m benchmarks.translation " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
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
