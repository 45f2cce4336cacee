"""Ensemble run directories, shared by the apps that ensemble trained runs.

    python -m apps.APP ensemble --members RUN_A RUN_B ... --run-dir ENSEMBLE

An ensemble's run directory holds `members.json` (the members' run directories) and a
config.json for its data settings (the first member's, overridden by the flags given to
`ensemble`). The members' training times add up: the ensemble's `train_wall_time_s` is
their sum, the time to train them one after the other. How members are combined is the
app's business (its serving module takes the members' modules).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from apps.common.cli import RunContext
from apps.common.config import ConfigT, config_from_dict, resolve_config, save_config
from apps.common.run_dir import RunDir

MEMBERS_FILE = "members.json"
#: The option scopes `ensemble` lists: the members fix the model and its training.
ENSEMBLE_SCOPES = ("run", "data", "inference")
#: Training figures of the members that add up to the ensemble's.
SUMMED_METRICS = ("train_wall_time_s", "train_cpu_time_s", "train_wall_s", "parameters")


def add_members_argument(parser: argparse.ArgumentParser, combined: str) -> None:
    """`--members RUN_DIR ...`; `combined` says how the app combines them."""
    parser.add_argument("--members", nargs="+", required=True, metavar="RUN_DIR",
                        help=f"run directories of trained runs ({combined})")


def member_config(run_dir: str | Path, config_cls: type[ConfigT]) -> ConfigT:
    """The saved config of a member run; FileNotFoundError if `run_dir` is not a run."""
    path = RunDir(run_dir).config_path
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.json)")
    values = json.loads(path.read_text(encoding="utf-8"))
    return config_from_dict(config_cls, values, str(path))


def members_of(run_dir: RunDir) -> list[Path] | None:
    """The member run directories of an ensemble run, or None for a single run."""
    path = run_dir.root / MEMBERS_FILE
    if not path.exists():
        return None
    return [Path(member) for member in json.loads(path.read_text(encoding="utf-8"))["members"]]


def refuse_ensemble(run_dir: RunDir, command: str) -> None:
    """ValueError when `command` (e.g. "train") is asked of an ensemble run."""
    if members_of(run_dir) is not None:
        raise ValueError(f"{run_dir.root} is an ensemble; {command} its members, not it")


def create(ctx: RunContext) -> list[Path]:
    """The `ensemble` command of any app: checks the members (runs of the app, whose
    config class is that of `ctx.config`) and writes the ensemble's run folder."""
    config_cls = type(ctx.config)
    members = [Path(member).resolve() for member in ctx.args.members]
    if len(set(members)) != len(members):
        raise ValueError(f"--members: a run is listed twice in {[str(m) for m in members]}")
    for member in members:
        try:
            RunDir(member).check_app(ctx.app)
        except ValueError as error:
            raise ValueError(f"--members: {error}") from None
        if members_of(RunDir(member)) is not None:
            raise ValueError(f"--members: {member} is itself an ensemble; list its members")
        member_config(member, config_cls)  # a run directory
        checkpoints = member / "checkpoints"
        if not any((checkpoints / name).exists() for name in ("best.keras", "final.keras")):
            raise FileNotFoundError(f"--members: {member} has no checkpoint; train it first")
    if ctx.run_dir.root.resolve() in members:
        raise ValueError("--run-dir: the ensemble needs a folder of its own, not a member's")
    base = dataclasses.asdict(member_config(members[0], config_cls))
    config = resolve_config(config_cls, ctx.args, base=base)
    config.run_dir = str(ctx.run_dir.root)
    save_config(config, ctx.run_dir.config_path)
    (ctx.run_dir.root / MEMBERS_FILE).write_text(
        json.dumps({"members": [str(member) for member in members]}, indent=2) + "\n",
        encoding="utf-8",
    )
    summed = {}
    for key in SUMMED_METRICS:
        values = [RunDir(member).read_metrics().get(key) for member in members]
        if all(value is not None for value in values):
            summed[key] = round(sum(values), 1)
    ctx.run_dir.write_metrics({"members": [str(member) for member in members], **summed})
    print(f"ensemble of {len(members)} runs: {ctx.run_dir.root}")
    return members
