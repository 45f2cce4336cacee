"""`python -m tuning search ...` runs or resumes a search; `python -m tuning report RUN_DIR`
turns it into tables and plots. See tuning/README.md."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from tuning.oracles import ORACLES

TASK_NAMES = ("jsb", "adding", "copy", "sign_memory")


def _pair(kind):
    def parse(text: str):
        parts = [part for part in text.split(",") if part.strip()]
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2:
            raise argparse.ArgumentTypeError(f"expected MIN,MAX (or one value), got {text!r}")
        return [kind(part) for part in parts]

    return parse


def _list(kind):
    return lambda text: [kind(part) for part in text.split(",") if part.strip()]


def _search_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to tune")
    what.add_argument("--run-dir", required=True, help="search directory (rerun to resume)")
    what.add_argument(
        "--task", choices=TASK_NAMES, default="jsb", help="built-in task (default: jsb)"
    )
    what.add_argument(
        "--app",
        default="",
        help="tune an app instead: sentiment, tagging, ... "
        "(its model builder, through tuning.adapters)",
    )
    what.add_argument("--app-config", default="", help="JSON file of the app's config values")
    what.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one app config value (JSON or text), repeatable",
    )
    data = parser.add_argument_group("task data (built-in tasks)")
    data.add_argument("--data", default="", help="jsb: JSON file with train/valid(/test) chorales")
    data.add_argument("--batch-size", type=int)
    data.add_argument("--length", type=int, help="procedural: sequence length / copy delay")
    data.add_argument("--train-examples", type=int)
    data.add_argument("--validation-examples", type=int)
    data.add_argument("--test-examples", type=int)
    data.add_argument("--steps-per-epoch", type=int, help="procedural: 0 = one pass")
    search = parser.add_argument_group("search")
    search.add_argument("--oracle", choices=ORACLES, default="random")
    search.add_argument("--max-trials", type=int, default=20, help="joint search: trials in all")
    search.add_argument(
        "--per-variant",
        type=int,
        default=0,
        help="N independent trials for every cell (Greff et al.'s design)",
    )
    search.add_argument("--epochs", type=int, default=10, help="per trial (Hyperband: maximum)")
    search.add_argument("--early-stopping-patience", type=int, default=0)
    search.add_argument("--executions-per-trial", type=int, default=1)
    search.add_argument("--seed", type=int, default=1234)
    search.add_argument(
        "--strategy",
        choices=("none", "mirrored", "multi_worker"),
        default="none",
        help="tf.distribute strategy of each trial (given to the Tuner constructor)",
    )
    search.add_argument("--max-consecutive-failed-trials", type=int, default=20)
    search.add_argument("--hyperband-factor", type=int, default=3)
    search.add_argument("--hyperband-iterations", type=int, default=1)
    search.add_argument(
        "--initial-points", type=int, default=0, help="bayesian: random trials first"
    )
    search.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity in trials")
    space = parser.add_argument_group("search space (defaults depend on the task)")
    space.add_argument(
        "--cells",
        type=_list(str),
        help="cells, or the groups greff / all "
        "(default: greff = vanilla + the 8 variants of Greff et al.)",
    )
    space.add_argument("--units", type=_pair(int), help="MIN,MAX hidden width, log-uniform")
    space.add_argument("--learning-rate", type=_pair(float), help="MIN,MAX, log-uniform")
    space.add_argument("--optimizers", type=_list(str), help="adam,sgd,rmsprop,... (sgd: Nesterov)")
    space.add_argument("--momentum", type=_pair(float), help="MIN,MAX for sgd (1 - log-uniform)")
    space.add_argument("--input-noise", type=_pair(float), help="MIN,MAX Gaussian input noise std")
    space.add_argument("--dropout", type=_pair(float), help="MIN,MAX variational input dropout")
    space.add_argument(
        "--clip-norms", type=_list(float), help="global-norm clipping values; 0 = off"
    )


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument(
        "--metric",
        default="",
        help="default: the test metric if every trial has one, else the objective",
    )
    parser.add_argument("--baseline", default="vanilla")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--top-fraction", type=float, default=0.1)
    parser.add_argument("--output", default="", help="default: RUN_DIR/report")
    parser.add_argument("--title", default="")
    parser.add_argument("--note", default="", help="free text stored with the benchmark figures")
    parser.add_argument(
        "--benchmark-json",
        default="",
        help="also write flat figures here (e.g. benchmarks/results/ablation_jsb.json)",
    )


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def search_config(args: argparse.Namespace):
    from tuning.search import SearchConfig
    from tuning.space import SearchSpace
    from tuning.tasks import TASKS, TaskOptions

    app_config: dict = {}
    if args.app_config:
        path = Path(args.app_config)
        if not path.exists():
            raise FileNotFoundError(f"--app-config {path}: no such file")
        app_config.update(json.loads(path.read_text(encoding="utf-8")))
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        app_config[key.strip().replace("-", "_")] = _parse_value(value)

    if args.app:
        from tuning.adapters import ADAPTERS

        if args.app not in ADAPTERS:
            raise ValueError(f"no adapter for app {args.app!r}; available: {', '.join(ADAPTERS)}")
        space_defaults = dict(ADAPTERS[args.app].default_space)
    else:
        space_defaults = dict(TASKS[args.task].default_space)
    flags = {
        "cells": args.cells,
        "units": args.units,
        "learning_rate": args.learning_rate,
        "optimizers": args.optimizers,
        "momentum": args.momentum,
        "input_noise": args.input_noise,
        "dropout": args.dropout,
        "clip_norms": args.clip_norms,
    }
    space_defaults.update({key: value for key, value in flags.items() if value is not None})
    options = {
        name: getattr(args, name)
        for name in (
            "batch_size",
            "length",
            "train_examples",
            "validation_examples",
            "test_examples",
            "steps_per_epoch",
        )
        if getattr(args, name) is not None
    }
    task_options = TaskOptions(
        data=str(Path(args.data).resolve()) if args.data else "", seed=args.seed, **options
    )
    return SearchConfig(
        run_dir=args.run_dir,
        task="" if args.app else args.task,
        app=args.app,
        oracle=args.oracle,
        max_trials=args.max_trials,
        per_variant=args.per_variant,
        epochs=args.epochs,
        early_stopping_patience=args.early_stopping_patience,
        executions_per_trial=args.executions_per_trial,
        seed=args.seed,
        strategy=args.strategy,
        max_consecutive_failed_trials=args.max_consecutive_failed_trials,
        hyperband_factor=args.hyperband_factor,
        hyperband_iterations=args.hyperband_iterations,
        initial_points=args.initial_points,
        verbose=args.verbose,
        space=SearchSpace(**space_defaults),
        task_options=task_options,
        app_config=app_config,
    )


def run_search_command(args, command: str) -> dict:
    from tuning.search import run_search

    config = search_config(args)
    summary = run_search(config, command=command)
    trials = summary.get("trials")
    print(
        f"search {config.run_dir} ({summary['role']}): {summary['wall_time_s']:.0f} s; "
        f"trials: {trials if trials is not None else 'reported to the chief'}"
    )
    if trials is not None and trials and not trials.get("COMPLETED"):
        raise RuntimeError(
            f"no trial COMPLETED in {config.run_dir}: read the 'message' of "
            f"{config.run_dir}/project/trial_*/trial.json"
        )
    if trials is not None:
        print(f"report: python -m tuning report {config.run_dir}")
    return summary


def run_report_command(args, command: str) -> dict:
    from tuning.report import benchmark_figures, build_report

    report = build_report(
        args.run_dir,
        args.metric,
        args.baseline,
        args.alpha,
        args.top_fraction,
        args.output,
        args.title,
    )
    print(report["markdown"])
    print(f"\nplot: {report['plot']}")
    if report["importance_plot"]:
        print(f"importance plot: {report['importance_plot']}")
    if args.benchmark_json:
        path = Path(args.benchmark_json)
        name = path.stem
        figures = benchmark_figures(report, name, "")
        figures["report_command"] = command
        if args.note:
            figures["note"] = args.note
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"figures: {path}")
    return report


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(
        prog="python -m tuning",
        description="keras-tuner searches over the suite's cells (the LSTM-variant ablation of "
        "Greff et al. 2017) and their reports.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _search_arguments(commands.add_parser("search", help="run or resume a search"))
    _report_arguments(commands.add_parser("report", help="tables and plots of a search"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = "python -m tuning " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    if args.command == "search":
        return run_search_command(args, command)
    return run_report_command(args, command)


def main_guard() -> None:
    try:
        main()
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main_guard()
