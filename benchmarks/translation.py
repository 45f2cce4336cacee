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
    "train_wall_s",
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
    from apps.translation.__main__ import main

    results: dict = {}
    for name, run_dir in runs:
        if not (run_dir / "config.json").exists():
            raise FileNotFoundError(f"{run_dir}: not a run directory of apps.translation")
        if evaluate:
            main(["evaluate", "--run-dir", str(run_dir), "--beam-width", "5"])
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        for key in FIGURES:
            if key in metrics:
                results[f"{name}_{key}"] = metrics[key]
        results[f"{name}_scheduled_sampling"] = config.get("scheduled_sampling_type") or "none"
        results.setdefault("bleu_signature", metrics.get("bleu_signature"))
        results[f"{name}_run_dir"] = str(run_dir)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.translation", description=__doc__)
    parser.add_argument("--run", action="append", type=_named_run, required=True, help="NAME=RUN_DIR")
    parser.add_argument("--evaluate", action="store_true", help="rerun evaluate on every run first")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = {
        "dataset": "multi30k en-de (WMT16 multimodal task 1), validation split (1,014 sentences)",
        **collect(args.run, args.evaluate),
        "command": "python -m benchmarks.translation " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - started, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), {platform.platform()}",
        "note": "speeds measured on a shared machine: compare ratios taken in one run",
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
