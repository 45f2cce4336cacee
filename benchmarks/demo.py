"""The adding-problem demo measured: `python -m benchmarks.demo` runs
`python -m apps.adding demo` (its defaults: tanh RNN, LSTM and GRU at T = 100) and merges
its table into benchmarks/results/adding.json (`demo_<model>_test_mse`, ...), with the
command, date, wall time and machine; the root README's demo table is generated from it."""

from __future__ import annotations

import argparse
import datetime
import shlex
import time
from pathlib import Path

from benchmarks import results_file
from benchmarks.host import machine

RESULTS = Path(__file__).resolve().parent / "results" / "adding.json"


def run(run_dir: str, conditions: str, results: Path = RESULTS, demo_args: list[str] = ()) -> dict:
    from apps.adding.__main__ import main

    start = time.monotonic()
    rows = main(["demo", "--run-dir", run_dir, *demo_args])
    wall = time.monotonic() - start
    figures = {
        "demo_command": shlex.join(["python", "-m", "apps.adding", "demo", *demo_args]),
        "demo_date": datetime.date.today().isoformat(),
        "demo_train_wall_time_s": round(wall, 1),
        "demo_conditions": conditions,
        "demo_machine": machine(),
    }
    for row in rows:
        for key in ("parameters", "test_mse", "steps_to_solve", "steps_trained"):
            figures[f"demo_{row['model']}_{key}"] = row[key]
    with results_file.locked(results):
        results_file.write(results, {**results_file.read(results), **figures})
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/adding/demo_benchmark")
    parser.add_argument("--conditions", default="idle machine",
                        help="what else ran on the machine (recorded with the figures)")
    parser.add_argument("--results-file", default=str(RESULTS))
    args, demo_args = parser.parse_known_args(argv)
    return run(args.run_dir, args.conditions, Path(args.results_file), demo_args)


if __name__ == "__main__":
    main()
