"""App configuration: a dataclass of options, each declared once with its help, its range
or choices and the commands that use it.

Every app defines a dataclass that extends `TrainConfig` and declares its fields with
`option(default, help, ...)`. The command line turns them into flags (`learning_rate` ->
`--learning-rate`); a command lists only the options of its scopes (`SCOPES`); values
come from the defaults, then a run's saved config, then `--config FILE`, then the flags.
`check_config` enforces every declared range and choice (and the app's own cross-field
`validate()`) before any work starts. A subclass that only changes a default writes the
plain field (`epochs: int = 4`): it keeps the help, range and scope declared above it.

Nothing here imports TensorFlow: `--help` and option errors answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT", bound="TrainConfig")

#: What an option is about, which decides the commands that list it:
#: run (every command), data (where examples come from: train, evaluate), model (the
#: architecture and its vocabularies: train, fixed once a run has trained), train (how to
#: train: train only, may change when a run resumes), inference (decoding and serving:
#: every command).
SCOPES = ("run", "data", "model", "train", "inference")
#: The scopes each standard command lists (extra commands say theirs).
COMMAND_SCOPES = {
    "train": SCOPES,
    "evaluate": ("run", "data", "inference"),
    "predict": ("run", "inference"),
    "export": ("run", "inference"),
}


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    scope: str = "train",
    choices: Sequence[Any] | None = None,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A config field with its help text, scope (`SCOPES`), and the values it accepts:
    `choices` (for a list field: of each element) and bounds (`at_least` <=, `above` <,
    `at_most` >=, `below` >)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown option scope {scope!r}; one of {SCOPES}")
    metadata = {
        "help": help,
        "scope": scope,
        "choices": tuple(choices) if choices is not None else None,
        "bounds": {
            name: value
            for name, value in (
                ("at_least", at_least), ("above", above), ("at_most", at_most), ("below", below)
            )
            if value is not None
        },
    }
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


#: '' trains with teacher forcing only; the others as layers.SCHEDULED_SAMPLING_TYPES.
SCHEDULED_SAMPLING = ("", "constant", "linear", "exponential", "inverse_sigmoid")


@dataclasses.dataclass
class ScheduledSamplingOptions:
    """The scheduled-sampling options of the apps whose decoders feed back their own
    predictions (translation, captioning): mixed into their configs."""

    # P(read the true token) at training step i, constant: k; linear: max(min, k - c * i);
    # exponential: k ** i; inverse_sigmoid: k / (k + exp(i / k)).
    scheduled_sampling_type: str = option(
        "", "scheduled sampling (Bengio et al. 2015): P(read the true token) at step i is "
        "constant k, linear max(min, k - c i), exponential k^i or inverse_sigmoid "
        "k / (k + exp(i / k)); none: teacher forcing", choices=SCHEDULED_SAMPLING)
    scheduled_sampling_k: float = option(1.0, "scheduled sampling: k", above=0)
    scheduled_sampling_c: float = option(0.0, "scheduled sampling, linear: decay c per step",
                                         at_least=0)
    scheduled_sampling_min_probability: float = option(
        0.0, "scheduled sampling: floor of the read probability", at_least=0, at_most=1)
    scheduled_sampling_prediction: str = option(
        "sample", "scheduled sampling: the token fed back (a draw or the argmax)",
        choices=("sample", "argmax"))


@dataclasses.dataclass
class TrainConfig:
    """Options every app shares, with one name and meaning everywhere; apps subclass it."""

    run_dir: str = option(
        "", "the run directory (made by train, which resumes an existing one; none: "
        "runs/<app>/<timestamp>)", scope="run")
    verbose: int = option(1, "Keras progress output: 0 silent, 1 progress bar, 2 one line "
                          "an epoch", scope="run", choices=(0, 1, 2))
    seed: int = option(1234, "seed of weights, shuffling and dropout", at_least=0)
    strategy: str = option(
        "default", "tf.distribute strategy: default (one device), mirrored (all local GPUs, "
        "or the CPUs), multi_worker (MultiWorkerMirroredStrategy from TF_CONFIG)",
        choices=("default", "mirrored", "multi_worker"))
    mixed_precision: str = option(
        "auto", "training precision: auto (bfloat16 where the CPU has AMX or AVX512-BF16 or "
        "the GPU supports it, else float32), float32, mixed_bfloat16, mixed_float16; "
        "weights stay float32",
        choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"))
    epochs: int = option(10, "passes (or --steps-per-epoch chunks) over the training data",
                         at_least=1)
    steps_per_epoch: int = option(0, "batches an epoch; 0: one pass over the training data",
                                  at_least=0)
    max_train_minutes: float = option(
        0.0, "wall-clock budget of training, summed over resumed processes; 0: no limit",
        at_least=0)
    batch_size: int = option(64, "examples a batch", at_least=1)
    optimizer: str = option("adam", "the Keras optimizer",
                            choices=("adam", "adamw", "nadam", "rmsprop", "sgd", "adagrad"))
    learning_rate: float = option(1e-3, "initial learning rate", above=0)
    momentum: float = option(0.9, "sgd: Nesterov momentum (other optimizers ignore it)",
                             at_least=0, below=1)
    clip_norm: float = option(0.0, "clip the global gradient norm to this (the optimizer's "
                              "global_clipnorm); 0 disables", at_least=0)
    lr_schedule: str = option(
        "constant", "learning-rate decay: constant; plateau (multiply by --lr-decay-factor "
        "after --lr-decay-patience epochs without a better --monitor); inverse_time (epoch e "
        "trains at learning_rate / (1 + --lr-inverse-time-decay * e), Ma & Hovy 2016)",
        choices=("constant", "plateau", "inverse_time"))
    lr_decay_factor: float = option(0.5, "plateau: factor the rate is multiplied by",
                                    above=0, below=1)
    lr_decay_patience: int = option(1, "plateau: epochs without improvement before a decay "
                                    "(0: decay at every epoch without improvement)", at_least=0)
    lr_decay_start_epoch: int = option(0, "plateau: no decay before this epoch (0-based), "
                                       "for scores that stay flat at first", at_least=0)
    min_learning_rate: float = option(0.0, "plateau: the rate never falls below this",
                                      at_least=0)
    lr_inverse_time_decay: float = option(0.05, "inverse_time: the decay d per epoch",
                                          at_least=0)
    ema_momentum: float = option(
        0.0, "> 0: keep an exponential moving average of the weights with this momentum; "
        "validation, the best checkpoint and early stopping use the average",
        at_least=0, below=1)
    early_stopping_patience: int = option(0, "stop after this many epochs without a better "
                                          "--monitor; 0 disables", at_least=0)
    monitor: str = option("val_loss", "the epoch log value that picks the best checkpoint "
                          "(and drives early stopping and plateau decay)")
    monitor_mode: str = option("auto", "whether a larger --monitor is better: auto (by its "
                               "name), min, max", choices=("auto", "min", "max"))

    def __post_init__(self):
        if self.mixed_precision == "":  # configs saved before `auto` existed
            self.mixed_precision = "float32"

    def validate(self) -> None:
        """Cross-field checks of the app (ranges and choices are declared on the fields)."""


# --------------------------------------------------------------------------- declarations


def _metadata(config_cls: type, name: str) -> dict:
    """The declaration of option `name`: the field's own, or, for a plain field that only
    changes a default, that of the nearest base class declaring it."""
    for cls in config_cls.__mro__:
        field = getattr(cls, "__dataclass_fields__", {}).get(name)
        if field is not None and field.metadata.get("help"):
            return dict(field.metadata)
    return {"help": "", "scope": "train", "choices": None, "bounds": {}}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def option_scope(config_cls: type, name: str) -> str:
    return _metadata(config_cls, name)["scope"]


def fields_in(config_cls: type, scopes: Iterable[str]) -> list[dataclasses.Field]:
    scopes = set(scopes)
    return [f for f in dataclasses.fields(config_cls) if option_scope(config_cls, f.name) in scopes]


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


_BOUND_TEXT = {"at_least": ">=", "above": ">", "at_most": "<=", "below": "<"}


def describe_values(metadata: dict) -> str:
    """E.g. "one of a, b", ">= 0 and < 1"."""
    if metadata.get("choices"):
        return "one of " + ", ".join(str(choice) for choice in metadata["choices"])
    return " and ".join(f"{_BOUND_TEXT[k]} {v}" for k, v in metadata.get("bounds", {}).items())


def _field_type(cls: type, field: dataclasses.Field) -> Any:
    return typing.get_type_hints(cls)[field.name]


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError("NaN is not a value")
    if math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _converter(annotation: Any):
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return _parse_bool
    if annotation is float:
        return _parse_float
    if annotation in (int, str):
        return annotation
    if origin in (list, tuple):
        (item,) = typing.get_args(annotation)[:1]
        item_converter = _converter(item)
        return lambda text: [item_converter(part) for part in text.split(",") if part != ""]
    raise TypeError(f"unsupported config field type {annotation!r}")


def add_config_arguments(
    parser: argparse.ArgumentParser,
    config_cls: type,
    scopes: Iterable[str] = SCOPES,
    exclude: Iterable[str] = (),
) -> None:
    """One flag per option in `scopes` but not in `exclude` (not given: the default or the
    run's value); with the train scopes, `--config FILE` too."""
    scopes, exclude = tuple(scopes), set(exclude)
    if "model" in scopes:
        parser.add_argument("--config", metavar="FILE",
                            help="JSON object of option values (the flags override it)")
    for field in fields_in(config_cls, scopes):
        if field.name in exclude:
            continue
        metadata = _metadata(config_cls, field.name)
        values = describe_values(metadata)
        default = _default(field)
        help_text = metadata["help"] or field.name.replace("_", " ")
        help_text += f" ({values + '; ' if values else ''}default: {_shown_default(default)})"
        parser.add_argument(
            flag(field.name),
            dest=field.name,
            type=_converter(_field_type(config_cls, field)),
            default=argparse.SUPPRESS,
            help=help_text.replace("%", "%%"),
            metavar=_metavar(field, metadata),
        )


def _shown_default(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "none"
    if value == "":
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _metavar(field: dataclasses.Field, metadata: dict) -> str:
    if metadata.get("choices") and len(metadata["choices"]) <= 6:
        return "{" + ",".join(str(choice) for choice in metadata["choices"]) + "}"
    return field.name.upper()


# --------------------------------------------------------------------------- values


def config_from_dict(config_cls: type[ConfigT], values: dict[str, Any], source: str) -> ConfigT:
    known = {field.name for field in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown config keys {unknown}; valid keys are {sorted(known)}")
    return config_cls(**values)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The JSON object of a config file; one-line errors naming the file (and line)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{path}: no such config file") from error
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason})") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from error
    except RecursionError as error:
        raise ValueError(f"{path}: not valid JSON (nested too deeply)") from error
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file holds one JSON object of option values")
    return values


def resolve_config(
    config_cls: type[ConfigT], args: argparse.Namespace, base: dict[str, Any] | None = None
) -> ConfigT:
    """Defaults, then `base` (e.g. a run's saved config), then the `--config` file, then
    the flags the user typed."""
    values: dict[str, Any] = dict(base or {})
    config_file = getattr(args, "config", None)
    if config_file:
        values.update(read_config_file(config_file))
    for field in dataclasses.fields(config_cls):
        if field.name in vars(args):
            values[field.name] = getattr(args, field.name)
    return config_from_dict(config_cls, values, source=str(config_file or "command line"))


def check_config(config: TrainConfig) -> None:
    """ValueError naming the first option outside its declared range or choices, then the
    app's cross-field `validate()`."""
    config_cls = type(config)
    for field in dataclasses.fields(config_cls):
        metadata = _metadata(config_cls, field.name)
        value = getattr(config, field.name)
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if not _accepted(item, metadata):
                shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
                raise ValueError(
                    f"{flag(field.name)} must be {describe_values(metadata)}; got {shown!r}"
                )
    config.validate()


def _accepted(value: Any, metadata: dict) -> bool:
    choices = metadata.get("choices")
    if choices and value not in choices:
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    bounds = metadata.get("bounds", {})
    checks = {
        "at_least": lambda bound: value >= bound,
        "above": lambda bound: value > bound,
        "at_most": lambda bound: value <= bound,
        "below": lambda bound: value < bound,
    }
    return all(checks[name](bound) for name, bound in bounds.items())


def changed_model_options(config_cls: type, saved: dict[str, Any], new: TrainConfig) -> list[str]:
    """The model-scope options whose value in `new` differs from the `saved` config."""
    return [
        field.name
        for field in fields_in(config_cls, ("model",))
        if field.name in saved and saved[field.name] != getattr(new, field.name)
    ]


def parse_config(config_cls: type[ConfigT], argv: list[str] | None = None) -> ConfigT:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, config_cls)
    config = resolve_config(config_cls, parser.parse_args(argv))
    check_config(config)
    return config


def save_config(config: TrainConfig, path: Path) -> None:
    """Writes the config atomically: a reader never sees a half-written file."""
    write_atomically(Path(path), json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True) + "\n")


def write_atomically(path: str | Path, content: str | bytes) -> None:
    """Writes `content` (text as UTF-8) to a temporary file beside `path`, then renames it
    over `path`: a reader, or a process that resumes after a kill, sees the old file or
    the new one, never a part of one."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_config(config_cls: type[ConfigT], path: Path) -> ConfigT:
    return config_from_dict(config_cls, read_config_file(path), source=str(path))
