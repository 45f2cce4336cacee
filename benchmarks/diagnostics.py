"""Runs the studies of apps/diagnostics with their default settings and records their
tables in benchmarks/results/diagnostics.json and their figures in
apps/diagnostics/figures/ (the ones the app README shows).

    python -m benchmarks.diagnostics run gradient-flow --conditions "..."   # or: all
    python -m benchmarks.diagnostics table                                 # Markdown

Each study is one `python -m apps.diagnostics <study>` command run in this process. Its
table goes into the results file as flat keys `<study>_<row>_<column>` (e.g.
`gradient_flow_lstm_init_decay_per_step`), with `<study>_columns` and `<study>_rows`
(the order to print them in), the command, the date, the wall and CPU time and the
conditions, next to a top-level `machine`.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

from benchmarks import results_file
from benchmarks.host import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "diagnostics.json"
FIGURES = ROOT / "apps" / "diagnostics" / "figures"
#: The columns that name a row of each study's table.
ROW_NAMES = {
    "gradient-flow": ("cell",),
    "exploding": ("clipping",),
    "memory-length": ("task", "cell", "T"),
    "forget-bias": ("metric", "forget_bias"),
    "tbptt": ("window_k",),
    "batching": ("strategy",),
}
NOTE = "wall and CPU times of the default settings on 2 CPU cores; see each study's conditions"


def _key(text) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(text)).strip("_").lower()


def _row_name(study: str, row: dict) -> str:
    return "_".join(_key(f"{name}{row[name]}" if name in ("T", "window_k", "forget_bias")
                         else row[name]) for name in ROW_NAMES[study])


def flat_record(study: str, record: dict) -> dict:
    """The flat keys of one study's table (without its command, date and times)."""
    prefix = _key(study)
    rows = record["table"]
    flat = {f"{prefix}_columns": list(rows[0]) if rows else [],
            f"{prefix}_rows": [_row_name(study, row) for row in rows],
            f"{prefix}_title": record["title"]}
    for row in rows:
        name = _row_name(study, row)
        flat.update({f"{prefix}_{name}_{_key(column)}": value for column, value in row.items()})
    return flat


def run(study: str, run_root: str, conditions: str) -> dict:
    from apps.diagnostics.__main__ import main

    argv = [study, "--run-dir", str(Path(run_root) / study)]
    wall, cpu = time.perf_counter(), time.process_time()
    record = main(argv)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    FIGURES.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(run_root) / study / "plots" / f"{study}.png", FIGURES / f"{study}.png")
    prefix = _key(study)
    flat = {
        **flat_record(study, record),
        f"{prefix}_command": "python -m apps.diagnostics " + shlex.join(argv),
        f"{prefix}_date": datetime.datetime.now().isoformat(timespec="seconds"),
        f"{prefix}_wall_time_s": round(wall, 1),
        f"{prefix}_cpu_time_s": round(cpu, 1),
        f"{prefix}_conditions": conditions,
    }
    with results_file.locked(RESULTS):
        results = results_file.read(RESULTS)
        kept = {key: value for key, value in results.items()
                if key not in ("machine", "note") and not key.startswith(f"{prefix}_")}
        results_file.write(RESULTS, {"machine": machine(), "note": NOTE, **kept, **flat})
    return flat


def table(results: dict | None = None) -> str:
    """Every recorded study as a Markdown table under its title, command and times."""
    results = results_file.read(RESULTS) if results is None else results
    blocks = []
    for study in ROW_NAMES:
        prefix = _key(study)
        if f"{prefix}_rows" not in results:
            continue
        columns = results[f"{prefix}_columns"]
        lines = [
            f"**{study}**: {results[f'{prefix}_title']}  ",
            f"`{results[f'{prefix}_command']}`, {results[f'{prefix}_date']}, wall "
            f"{results[f'{prefix}_wall_time_s'] / 60:.1f} min (CPU "
            f"{results[f'{prefix}_cpu_time_s'] / 60:.1f} min); {results[f'{prefix}_conditions']}",
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
        ]
        for name in results[f"{prefix}_rows"]:
            values = [results[f"{prefix}_{name}_{_key(column)}"] for column in columns]
            lines.append("| " + " | ".join(_shown(value) for value in values) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _shown(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.diagnostics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run studies with their defaults and record them")
    run_parser.add_argument("study", choices=[*ROW_NAMES, "all"])
    run_parser.add_argument("--run-root", default="runs/diagnostics")
    run_parser.add_argument("--conditions", default="",
                            help="what else shared the machine (saved with the figures)")
    sub.add_parser("table", help="print the recorded tables as Markdown")
    args = parser.parse_args(argv)
    if args.command == "run":
        for study in ROW_NAMES if args.study == "all" else [args.study]:
            run(study, args.run_root, args.conditions)
    else:
        print(table())


if __name__ == "__main__":
    sys.exit(main())
