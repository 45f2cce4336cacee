"""The command line every app shares: `python -m apps.<app> train|evaluate|predict|export`.

train     resolves the config (defaults < saved run config < --config FILE < flags),
          writes it to the run directory, and trains; rerunning with the same
          --run-dir resumes from the last backed-up epoch.
others    read the run directory's config.json (flags still override it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from apps.common.config import (
    TrainConfig,
    add_config_arguments,
    config_from_dict,
    resolve_config,
    save_config,
)
from apps.common.run_dir import RunDir
from apps.common.strategy import make_strategy


@dataclasses.dataclass
class RunContext:
    """What a command handler receives."""

    app: str
    config: Any
    run_dir: RunDir | None  # None only for commands with requires_run=False run without one
    args: argparse.Namespace

    def strategy(self):
        return make_strategy(self.config.strategy)


@dataclasses.dataclass
class Command:
    handler: Callable[[RunContext], Any]
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    creates_run: bool = False  # train: may create a new run directory
    requires_run: bool = True  # others: need --run-dir of an existing run (if False, the
    # handler gets run_dir=None when no --run-dir is given)


def _load_run_config(config_cls: type, run_dir: RunDir) -> dict[str, Any]:
    if not run_dir.config_path.exists():
        return {}
    values = json.loads(run_dir.config_path.read_text(encoding="utf-8"))
    return dataclasses.asdict(config_from_dict(config_cls, values, str(run_dir.config_path)))


def run_app(
    app: str,
    config_cls: type[TrainConfig],
    commands: dict[str, Command],
    argv: list[str] | None = None,
    description: str = "",
) -> Any:
    """Parses the command line, prepares the run directory and calls the command."""
    parser = argparse.ArgumentParser(prog=f"python -m apps.{app}", description=description)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        add_config_arguments(sub, config_cls)
        if command.add_arguments is not None:
            command.add_arguments(sub)
    args = parser.parse_args(argv)
    command = commands[args.command]

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_dir_arg = getattr(args, "run_dir", "")
    if not command.creates_run and command.requires_run:
        if not run_dir_arg:
            parser.error(f"{args.command}: --run-dir RUN_DIR is required (a folder made by train)")
        if not (Path(run_dir_arg) / "config.json").exists():
            parser.error(f"{args.command}: {run_dir_arg} is not a run directory (no config.json)")
    if not command.creates_run and not command.requires_run and not run_dir_arg:
        run_dir = None  # e.g. predicting with an export alone: no run directory is made
        config = resolve_config(config_cls, args)
    else:
        run_dir = RunDir.create(app, run_dir_arg)
        config = resolve_config(config_cls, args, base=_load_run_config(config_cls, run_dir))
        config.run_dir = str(run_dir.root)
    if command.creates_run:
        save_config(config, run_dir.config_path)
    keras.utils.set_random_seed(config.seed)
    logging.info("%s %s: run directory %s", app, args.command, run_dir.root if run_dir else "none")
    return command.handler(RunContext(app=app, config=config, run_dir=run_dir, args=args))


def main_guard(run: Callable[[], Any]) -> None:
    """Runs `run`, turning expected user errors into one clear line and exit status 2."""
    try:
        run()
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
