"""The command line every app shares: `python -m apps.<app> train|evaluate|predict|export`.

train     resolves the config (defaults < saved run config < --config FILE < flags),
          checks it, writes it to the run directory, and trains; rerunning with the same
          --run-dir resumes from the last backed-up epoch.
others    read the run directory's config.json; they list and accept only the options
          of their scopes (see apps.common.config.SCOPES).

Every option is checked before any work starts: a bad one is one line on stderr, exit
status 2, and the run directory is left as it was. The parser, the config and this
module import no TensorFlow; a command's handler (named "module:function") is imported
only when it runs, so `--help` and option errors answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from apps.common.config import (
    COMMAND_SCOPES,
    TrainConfig,
    add_config_arguments,
    changed_model_options,
    check_config,
    config_from_dict,
    flag,
    read_config_file,
    resolve_config,
    save_config,
)
from apps.common.run_dir import RunDir, Snapshot, check_app


@dataclasses.dataclass
class RunContext:
    """What a command handler receives."""

    app: str
    config: Any
    run_dir: RunDir | None  # None only for commands with requires_run=False run without one
    args: argparse.Namespace

    def strategy(self):
        """The config's tf.distribute strategy, made once (MultiWorkerMirroredStrategy
        exists once a process: `run_app` makes it before anything else uses TensorFlow)."""
        from apps.common.strategy import make_strategy

        made = _STRATEGIES.get(self.config.strategy)
        if made is None:
            made = _STRATEGIES[self.config.strategy] = make_strategy(self.config.strategy)
        return made


#: The strategies made in this process, by name.
_STRATEGIES: dict = {}


@dataclasses.dataclass
class Command:
    """A subcommand: `handler` is a function of a `RunContext`, or "module:function"
    (imported when the command runs). `scopes` are the option scopes it lists (default:
    by its name in `COMMAND_SCOPES`, else every scope)."""

    handler: Callable[[RunContext], Any] | str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    creates_run: bool = False  # train: may create a new run directory
    requires_run: bool = True  # others: need --run-dir of an existing run (if False, the
    # handler gets run_dir=None when no --run-dir is given)
    scopes: Sequence[str] | None = None

    def resolved_handler(self) -> Callable[[RunContext], Any]:
        if callable(self.handler):
            return self.handler
        module, _, name = self.handler.partition(":")
        return getattr(importlib.import_module(module), name)


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (`error: ...`) and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def number_at_least(minimum: float, kind: type = int) -> Callable[[str], Any]:
    """An argparse `type` accepting numbers of `kind` >= `minimum` (a one-line error
    otherwise)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if not value >= minimum:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        return value

    return parse


def evaluate_split_argument(parser: argparse.ArgumentParser) -> None:
    """`--split valid|test`, the same in every app's `evaluate`."""
    parser.add_argument("--split", choices=("valid", "test"), default="valid",
                        help="which split to score: valid (choose models on it) or test (score "
                        "it once, for a recipe fixed in advance); default: valid")


def export_arguments(parser: argparse.ArgumentParser) -> None:
    """`--xla true|false`, the same in every app's `export` (`apps.common.serving`)."""
    parser.add_argument("--xla", choices=("true", "false"), default="true",
                        help="compile the recurrent loops (and searches) of the serving "
                        "signatures with XLA, once per bucket of input shapes: several times "
                        "lower latency on CPUs; TF Serving then needs "
                        "--xla_cpu_compilation_enabled=true (default: true)")


def _saved_config(config_cls: type, run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not path.exists():
        return {}
    values = read_config_file(path)
    return dataclasses.asdict(config_from_dict(config_cls, values, str(path)))


def _has_trained(run_dir: Path) -> bool:
    """Whether training wrote weights into `run_dir` (a checkpoint or a backup)."""
    return any((run_dir / sub).is_dir() and any((run_dir / sub).iterdir())
               for sub in ("checkpoints", "backup"))


def _scopes(name: str, command: Command) -> tuple[str, ...]:
    if command.scopes is not None:
        return tuple(command.scopes)
    return COMMAND_SCOPES.get(name, COMMAND_SCOPES["train"])


def build_parser(
    app: str, config_cls: type[TrainConfig], commands: dict[str, Command], description: str = ""
) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"python -m apps.{app}", description=description)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        add_config_arguments(sub, config_cls, _scopes(name, command))
        if command.add_arguments is not None:
            command.add_arguments(sub)
    return parser


def prepare(
    app: str,
    config_cls: type[TrainConfig],
    commands: dict[str, Command],
    argv: list[str] | None = None,
    description: str = "",
) -> tuple[Command, RunContext]:
    """Parses and checks everything a command needs, without TensorFlow and without
    touching the disk: (the command, its context with `run_dir` still unmade)."""
    parser = build_parser(app, config_cls, commands, description)
    args = parser.parse_args(argv)
    command = commands[args.command]
    run_dir_arg = getattr(args, "run_dir", "")
    if not command.creates_run and command.requires_run:
        if not run_dir_arg:
            parser.error(f"{args.command}: --run-dir RUN_DIR is required (a folder made by train)")
        if not (Path(run_dir_arg) / "config.json").exists():
            parser.error(f"{args.command}: {run_dir_arg} is not a run directory (no config.json)")
    if run_dir_arg:
        check_app(run_dir_arg, app)  # before reading another app's config
    base = _saved_config(config_cls, Path(run_dir_arg)) if run_dir_arg else {}
    config = resolve_config(config_cls, args, base=base)
    check_config(config)
    if command.creates_run and run_dir_arg and base and _has_trained(Path(run_dir_arg)):
        changed = changed_model_options(config_cls, base, config)
        if changed:
            shown = ", ".join(
                f"{flag(name)} {base[name]!r} -> {getattr(config, name)!r}" for name in changed
            )
            raise ValueError(
                f"{run_dir_arg} was trained with other model options ({shown}); a run resumes "
                "only with its own model: give a new --run-dir to train this one"
            )
    return command, RunContext(app=app, config=config, run_dir=None, args=args)


def run_app(
    app: str,
    config_cls: type[TrainConfig],
    commands: dict[str, Command],
    argv: list[str] | None = None,
    description: str = "",
) -> Any:
    """Parses and checks the command line, prepares the run directory and calls the
    command. The config is written (atomically) only once it is accepted."""
    command, ctx = prepare(app, config_cls, commands, argv, description)
    config, args = ctx.config, ctx.args
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if command.creates_run and config.strategy == "multi_worker":
        # Its collective ops must be configured before TensorFlow's runtime starts.
        ctx.strategy()
    handler = command.resolved_handler()  # imports TensorFlow, through the app's tasks
    run_dir_arg = getattr(args, "run_dir", "")
    if not command.creates_run and not command.requires_run and not run_dir_arg:
        run_dir = None  # e.g. predicting with an export alone: no run directory is made
    snapshot = Snapshot(run_dir_arg) if run_dir_arg else None
    try:
        if command.creates_run or command.requires_run or run_dir_arg:
            run_dir = RunDir.create(app, run_dir_arg)
            snapshot = snapshot or Snapshot(run_dir.root, existed=False)
            config.run_dir = str(run_dir.root)
        if command.creates_run:
            save_config(config, run_dir.config_path)
        import keras

        keras.utils.set_random_seed(config.seed)
        logging.info("%s %s: run directory %s", app, args.command, run_dir.root if run_dir else "none")
        return handler(dataclasses.replace(ctx, run_dir=run_dir))
    except USER_ERRORS:
        # Bad data (or another user error) found by the command: the run directory is put
        # back as it was, unless training committed an epoch before the error.
        if snapshot is not None:
            snapshot.restore()
        raise


#: What `main_guard` reports as one line: errors of the user's input or environment.
USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError, OSError)


def main_guard(run: Callable[[], Any]) -> None:
    """Runs `run`, turning expected user errors into one clear line and exit status 2."""
    try:
        run()
    except USER_ERRORS as error:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: rerun train with the same --run-dir to resume", file=sys.stderr)
        sys.exit(130)

