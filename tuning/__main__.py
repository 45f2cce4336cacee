"""`python -m tuning search TASK ...` runs or resumes a search, `python -m tuning report
RUN_DIR` turns it into tables and plots, `python -m tuning demo` runs a small ablation on
the adding problem. See tuning/README.md.

Every option is declared once with its help and range (`tuning.config`, `tuning.space`,
the task's config) and checked before any work starts: a bad one is one line on stderr
and exit status 2. `--help` and option errors import no TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
from pathlib import Path

from apps.common.cli import main_guard
from apps.common.config import SCOPES, add_config_arguments, check_config, read_config_file
from tuning.adapters import ADAPTERS, Adapter, adapter_class
from tuning.config import DemoOptions, ReportOptions, SearchConfig, SearchOptions
from tuning.space import SearchSpace


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (`error: ...`) and exit status 2, as in the apps."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _options(args: argparse.Namespace, config_cls: type) -> dict:
    """The values of `config_cls`'s fields that the command line gave."""
    given = vars(args)
    return {f.name: given[f.name] for f in dataclasses.fields(config_cls) if f.name in given}


def _add_task_parser(tasks, name: str) -> None:
    cls = adapter_class(name)  # its module imports no TensorFlow
    objective = cls.objective or cls.config_class()().monitor
    parser = tasks.add_parser(name, help=cls.description, description=(
        f"{' '.join((cls.__doc__ or '').split())} Objective: {objective} ({cls.direction}imised)."))
    add_config_arguments(parser.add_argument_group("search"), SearchOptions, ("run", "train"))
    space = SearchSpace.with_defaults(cls.default_space)
    add_config_arguments(
        parser.add_argument_group("search space (this task's defaults)"), space, ("train",),
        exclude=[f.name for f in dataclasses.fields(space) if f.name not in cls.space_options()],
    )
    add_config_arguments(
        parser.add_argument_group(f"options of {name} (fixed for every trial)"),
        cls.config_class(), SCOPES, exclude=cls.excluded_options(),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m tuning",
        description="keras-tuner searches over the suite's cells (the LSTM-variant ablation of "
        "Greff et al. 2017) for any task or app, and their reports.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    search = commands.add_parser(
        "search", help="run or resume a search", description="Run or resume a search of TASK; "
        "`python -m tuning search TASK --help` lists its options.")
    tasks = search.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in ADAPTERS:
        _add_task_parser(tasks, name)
    report = commands.add_parser("report", help="tables and plots of a search",
                                 description="Tables, t-tests, importances and plots of a search.")
    report.add_argument("report_dir", metavar="RUN_DIR", help="the search directory")
    add_config_arguments(report, ReportOptions, ("run", "train"))
    demo = commands.add_parser("demo", help="a small ablation on the adding problem",
                               description=DemoOptions.__doc__)
    add_config_arguments(demo, DemoOptions, ("run", "train"))
    return parser


def search_config(args: argparse.Namespace) -> SearchConfig:
    """The checked configuration of a search (its task's options included), without
    TensorFlow and without touching the disk."""
    cls: type[Adapter] = adapter_class(args.task)
    space = SearchSpace.with_defaults(cls.default_space)(**_options(args, SearchSpace))
    task_values = read_config_file(args.config) if getattr(args, "config", None) else {}
    task_values.update({name: vars(args)[name] for name in cls.option_names() if name in vars(args)})
    config = SearchConfig(
        **_options(args, SearchOptions),
        task=args.task,
        space=SearchSpace(**dataclasses.asdict(space)),
        task_config=task_values,
    )
    check_config(config)
    cls.make_config(task_values, Path(config.run_dir) / "task", config.seed, config.verbose,
                    config.strategy)
    return config


def run_search_command(config: SearchConfig, command: str) -> dict:
    from tuning.search import run_search

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


def run_report_command(run_dir: str, options: ReportOptions, command: str) -> dict:
    from tuning.report import benchmark_figures, build_report

    report = build_report(run_dir, options.metric, options.baseline, options.alpha,
                          options.top_fraction, options.output, options.title)
    print(report["markdown"])
    print(f"\nplot: {report['plot']}")
    if report["importance_plot"]:
        print(f"importance plot: {report['importance_plot']}")
    if options.benchmark_json:
        path = Path(options.benchmark_json)
        figures = benchmark_figures(report, path.stem, "")
        figures["report_command"] = command
        if options.note:
            figures["note"] = options.note
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"figures: {path}")
    return report


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    command = "python -m tuning " + " ".join(shlex.quote(a) for a in argv)
    if args.command == "search":
        config = search_config(args)
    else:
        config = (ReportOptions if args.command == "report" else DemoOptions)(**_options(
            args, ReportOptions if args.command == "report" else DemoOptions))
        check_config(config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "search":
        return run_search_command(config, command)
    if args.command == "report":
        return run_report_command(args.report_dir, config, command)
    from tuning.demo import run_demo

    return run_demo(config, command)


if __name__ == "__main__":
    main_guard(main)
