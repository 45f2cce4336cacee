"""The diagnostics app's commands: one per study, and `all`.

Each study prints its table, writes `plots/<study>.png`, and merges
`{<study>: {"title", "table", "wall_time_s", ...details}}` into the run's metrics.json.
"""

from __future__ import annotations

import importlib
import time

import keras

from apps.common.cli import RunContext
from apps.diagnostics.config import STUDIES
from apps.diagnostics.report import StudyResult, format_table


def _module(study: str):
    return importlib.import_module(f"apps.diagnostics.studies.{study.replace('-', '_')}")


def run_study(ctx: RunContext, study: str) -> dict:
    keras.config.set_dtype_policy("float32")
    start = time.perf_counter()
    result: StudyResult = _module(study).run(ctx)
    wall = round(time.perf_counter() - start, 1)
    print(format_table(result.title, result.rows))
    print(f"plot: {result.figure}  ({wall:.0f} s)")
    record = {"title": result.title, "table": result.rows, "wall_time_s": wall, **result.details}
    ctx.run_dir.write_metrics({study: record})
    return record


def gradient_flow(ctx: RunContext) -> dict:
    return run_study(ctx, "gradient-flow")


def exploding(ctx: RunContext) -> dict:
    return run_study(ctx, "exploding")


def memory_length(ctx: RunContext) -> dict:
    return run_study(ctx, "memory-length")


def forget_bias(ctx: RunContext) -> dict:
    return run_study(ctx, "forget-bias")


def tbptt(ctx: RunContext) -> dict:
    return run_study(ctx, "tbptt")


def batching(ctx: RunContext) -> dict:
    return run_study(ctx, "batching")


def run_all(ctx: RunContext) -> dict:
    """Every study in turn, into one run directory."""
    return {study: run_study(ctx, study) for study in STUDIES}
