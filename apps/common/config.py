"""App configuration: a dataclass of defaults, overridden by `--config FILE` and flags.

Every app defines a dataclass that extends `TrainConfig`. `parse_config` turns its fields
into command-line flags (`learning_rate` -> `--learning-rate`), reads an optional JSON file
given by `--config`, then applies the flags the user typed, in that order.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT", bound="TrainConfig")


@dataclasses.dataclass
class TrainConfig:
    """Options every app shares; apps subclass this and add their own fields."""

    seed: int = 1234
    run_dir: str = ""
    strategy: str = "default"  # default | mirrored | multi_worker
    epochs: int = 10
    steps_per_epoch: int = 0  # 0: one pass over the training data
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    clip_norm: float = 0.0  # global gradient-norm clipping; 0 disables
    ema_momentum: float = 0.0  # > 0: validate and checkpoint the weights' moving average
    early_stopping_patience: int = 0  # epochs without improvement; 0 disables
    monitor: str = "val_loss"
    monitor_mode: str = "auto"  # auto | min | max: whether a larger `monitor` value is better
    verbose: int = 1


def _field_type(cls: type, field: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(cls)
    return hints[field.name]


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def _converter(annotation: Any):
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return _parse_bool
    if annotation in (int, float, str):
        return annotation
    if origin in (list, tuple):
        (item,) = typing.get_args(annotation)[:1]
        item_converter = _converter(item)
        return lambda text: [item_converter(part) for part in text.split(",") if part != ""]
    raise TypeError(f"unsupported config field type {annotation!r}")


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Adds `--config FILE` and one flag per dataclass field (default: not given)."""
    parser.add_argument("--config", help="JSON file of config values (flags override it)")
    for field in dataclasses.fields(config_cls):
        annotation = _field_type(config_cls, field)
        flag = "--" + field.name.replace("_", "-")
        default = (
            field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        )
        parser.add_argument(
            flag,
            dest=field.name,
            type=_converter(annotation),
            default=argparse.SUPPRESS,
            help=f"(default: {default!r})",
            metavar=field.name.upper(),
        )


def config_from_dict(config_cls: type[ConfigT], values: dict[str, Any], source: str) -> ConfigT:
    known = {field.name for field in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown config keys {unknown}; valid keys are {sorted(known)}")
    return config_cls(**values)


def resolve_config(
    config_cls: type[ConfigT], args: argparse.Namespace, base: dict[str, Any] | None = None
) -> ConfigT:
    """Defaults, then `base` (e.g. a run's saved config), then the `--config` file, then
    the flags the user typed."""
    values: dict[str, Any] = dict(base or {})
    config_file = getattr(args, "config", None)
    if config_file:
        path = Path(config_file)
        try:
            values.update(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as error:
            raise FileNotFoundError(f"--config {path}: no such file") from error
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from error
    for field in dataclasses.fields(config_cls):
        if field.name in vars(args):
            values[field.name] = getattr(args, field.name)
    return config_from_dict(config_cls, values, source=str(config_file or "command line"))


def parse_config(config_cls: type[ConfigT], argv: list[str] | None = None) -> ConfigT:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, config_cls)
    return resolve_config(config_cls, parser.parse_args(argv))


def save_config(config: TrainConfig, path: Path) -> None:
    path.write_text(json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True) + "\n")


def load_config(config_cls: type[ConfigT], path: Path) -> ConfigT:
    values = json.loads(Path(path).read_text(encoding="utf-8"))
    return config_from_dict(config_cls, values, source=str(path))
