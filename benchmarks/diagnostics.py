"""Runs the studies of apps/diagnostics with their default settings and records their
tables in benchmarks/results/diagnostics.json and their figures in
apps/diagnostics/figures/ (the ones the app README shows).

    python -m benchmarks.diagnostics gradient-flow --conditions "..."   # or: all
    python -m benchmarks.summary --write                               # the README tables

Each study is one `python -m apps.diagnostics <study>` command run in this process. Its
table goes into the results file as flat keys `<study>_<row>_<column>` (e.g.
`gradient_flow_lstm_init_decay_per_step`), with the study's command, date, wall and CPU
time and conditions (`<study>_command`, ...), next to a top-level `machine`; the README
tables are declared in benchmarks/tables.py.
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

from apps.diagnostics.config import (
    BATCHING_STRATEGIES,
    FLOW_CELLS,
    MEMORY_TASKS,
    DiagnosticsConfig,
)
from benchmarks import results_file
from benchmarks.host import machine
from benchmarks.summary import Column, KeyTable, fixed, minutes, percent, text

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


#: Numbers that name a row are written after a short prefix: t10, k35, fb1.
_NUMBER_PREFIXES = {"T": "t", "window_k": "k", "forget_bias": "fb"}


def _row_name(study: str, row: dict) -> str:
    return "_".join(
        f"{_NUMBER_PREFIXES[name]}{row[name]:g}" if name in _NUMBER_PREFIXES else _key(row[name])
        for name in ROW_NAMES[study]
    )


def flat_record(study: str, record: dict) -> dict:
    """The flat keys of one study's table: `<study>_<row name>_<column>`."""
    prefix = _key(study)
    return {
        f"{prefix}_{_row_name(study, row)}_{_key(column)}": value
        for row in record["table"] for column, value in row.items()
    }


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


# --------------------------------------------------------------------------- README tables

_README = "apps/diagnostics/README.md"
_DEFAULTS = DiagnosticsConfig()


def _significant(value) -> str:
    return f"{value:.3g}"


def _study_table(study: str, headers: list[str], columns: list[Column],
                 rows: list[tuple[list[str], str]]) -> KeyTable:
    """A study's table: `columns` keys are templates of the column name ("{row}_...")."""
    prefix = _key(study)
    return KeyTable(
        readme=_README, file="diagnostics", headers=headers,
        columns=[Column(c.header, f"{prefix}_{{row}}_{c.key}", c.format) for c in columns],
        rows=[(cells, {"row": row}) for cells, row in rows],
    )


def _lengths() -> list[int]:
    return _DEFAULTS.memory_lengths


README_TABLES = {
    "diagnostics-runs": KeyTable(
        readme=_README, file="diagnostics", headers=["study"],
        columns=[
            Column("wall time", "{study}_wall_time_s", minutes),
            Column("CPU time", "{study}_cpu_time_s", minutes),
            Column("date", "{study}_date", lambda value: str(value)[:10]),
            Column("conditions", "{study}_conditions", text),
            Column("command", "{study}_command", lambda value: f"`{value}`"),
        ],
        rows=[([study], {"study": _key(study)}) for study in ROW_NAMES],
    ),
    "diagnostics-gradient-flow": _study_table(
        "gradient-flow", ["cell"],
        [Column("decay per step, init", "init_decay_per_step", fixed(3)),
         Column("‖g_1‖ / ‖g_T‖, init", "init_ratio_1_to_t", _significant),
         Column("decay per step, trained", "trained_decay_per_step", fixed(3)),
         Column("‖g_1‖ / ‖g_T‖, trained", "trained_ratio_1_to_t", _significant),
         Column("valid MSE before", "valid_mse_before", fixed(3)),
         Column("valid MSE after", "valid_mse_after", fixed(3))],
        [([cell], cell) for cell in FLOW_CELLS]),
    "diagnostics-exploding": _study_table(
        "exploding", ["clipping"],
        [Column("threshold", "threshold", _significant),
         Column("steps", "steps", text),
         Column("max raw norm", "max_gradient_norm", _significant),
         Column("median raw norm", "median_gradient_norm", _significant),
         Column("max applied norm", "max_applied_norm", _significant),
         Column("max applied entry", "max_applied_entry", _significant),
         Column("clipped steps", "clipped_steps", text),
         Column("valid MSE", "final_valid_mse", fixed(4)),
         Column("diverged", "diverged", text)],
        [([mode], mode) for mode in ("none", "norm", "value")]),
    "diagnostics-memory-length": _study_table(
        "memory-length", ["task", "cell"],
        [Column(f"T={length}", f"t{length}_success_rate", fixed(2)) for length in _lengths()],
        [([task, cell], f"{task}_{cell}") for task in MEMORY_TASKS
         for cell in _DEFAULTS.memory_cells]),
    "diagnostics-forget-bias": _study_table(
        "forget-bias", ["held-out figure", "forget bias"],
        [Column("mean over seeds", "final_mean", fixed(4)),
         Column("std", "final_std", fixed(4)),
         Column("best seed", "final_best", fixed(4)),
         Column("worst seed", "final_worst", fixed(4))],
        [([metric, bias], f"{metric}_fb{bias}") for metric in ("valid_mse", "valid_nats_per_char")
         for bias in ("0", "1")]),
    "diagnostics-tbptt": _study_table(
        "tbptt", ["window k"],
        [Column("steps", "steps", text),
         Column("chars seen", "chars_seen", lambda value: f"{value:,}"),
         Column("valid perplexity", "valid_perplexity", fixed(3)),
         Column("valid nats/char", "valid_nats_per_char", fixed(3)),
         Column("closing-key nats/letter", "key_nats_per_char", fixed(3)),
         Column("chars/s", "chars_per_second", lambda value: f"{value:,.0f}")],
        [([str(window)], f"k{window}") for window in _DEFAULTS.tbptt_windows]),
    "diagnostics-batching": _study_table(
        "batching", ["strategy"],
        [Column("padded tokens", "padded_fraction", percent),
         Column("tokens/s", "tokens_per_second", lambda value: f"{value:,.0f}"),
         Column("seconds of steps", "train_seconds", fixed(1)),
         Column("valid nats/token", "valid_loss", fixed(3))],
        [([strategy], strategy) for strategy in BATCHING_STRATEGIES]),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.diagnostics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=[*ROW_NAMES, "all"])
    parser.add_argument("--run-root", default="runs/diagnostics")
    parser.add_argument("--conditions", default="",
                        help="what else shared the machine (saved with the figures)")
    args = parser.parse_args(argv)
    for study in ROW_NAMES if args.study == "all" else [args.study]:
        run(study, args.run_root, args.conditions)


if __name__ == "__main__":
    sys.exit(main())
