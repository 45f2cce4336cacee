"""Adapters: what the tuner needs of a task, in one protocol for the apps and for the
built-in tasks.

An adapter says, for one task, which config it has (`config_class`: a dataclass of
declared options, the app's own for an app), how to prepare its data once (`prepare`:
the app's own readers; vocabularies written under the search directory), how a trial's
values become config fields (`configure`) and how to build the compiled model (`build`:
the app's own builder). Its `objective` names the epoch-log value the oracle optimises.

    python -m tuning search sentiment --run-dir runs/tune_sentiment \
        --data-dir /data/imdb --cells lstm,gru,cifg --max-trials 12 --epochs 2

The adapters: `tuning.tasks` (JSB Chorales, the copy and sign-memory tasks) and
`tuning.app_adapters` (the apps, through their config, data and model modules). A new
one subclasses `Adapter` and is named in `ADAPTERS`. Nothing here imports TensorFlow:
the command line lists and checks every task's options without it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apps.common.config import SCOPES, check_config, config_from_dict, fields_in, flag
from tuning.config import SearchOptions
from tuning.space import SearchSpace

#: The hyperparameters of `tuning.space` every model takes (dropout and input noise:
#: only where the model has them).
TRAINING_HYPERPARAMETERS = ("cell", "units", "learning_rate", "optimizer", "momentum", "clip_norm")
WITH_DROPOUT = (*TRAINING_HYPERPARAMETERS, "dropout")

#: Trial values -> config fields (`Adapter.configure`, where the field exists).
FIELDS = {name: name for name in (*TRAINING_HYPERPARAMETERS, "dropout", "input_noise")}

#: Options of `apps.common.config.TrainConfig` the search sets or does not apply: the
#: search's own flags (`tuning.search.SearchOptions`) stand for the first ones; the last
#: ones keep their default in trials.
SEARCH_OWNED = (
    "run_dir", "verbose", "seed", "strategy", "epochs", "early_stopping_patience",
    "monitor", "monitor_mode", "mixed_precision", "max_train_minutes", "ema_momentum",
)

#: Task name -> "module:class" (imported when asked for).
ADAPTERS: dict[str, str] = {
    "jsb": "tuning.tasks:JSBChorales",
    "copy": "tuning.tasks:CopyTask",
    "sign_memory": "tuning.tasks:SignMemoryTask",
    "adding": "tuning.app_adapters:Adding",
    "sentiment": "tuning.app_adapters:Sentiment",
    "tagging": "tuning.app_adapters:Tagging",
    "language_model": "tuning.app_adapters:LanguageModel",
    "translation": "tuning.app_adapters:Translation",
}


@dataclasses.dataclass
class Prepared:
    """What `prepare` returns. `test` (if any) is evaluated once per trial, at the end, with
    the weights of the best validation epoch; `context` is whatever the builder needs
    (vocabulary sizes...); `callbacks` makes the task's callbacks of one trial's fit."""

    train: Any
    validation: Any
    test: Any = None
    steps_per_epoch: int | None = None  # None: one pass over `train`
    context: Any = None
    callbacks: Callable[[], list] = list


class Adapter:
    """How the tuner trains one task. Subclasses set the class attributes and implement
    `config_class`, `prepare` and `build`."""

    name = ""
    description = ""  # report title
    objective = ""  # an epoch-log key; "" = the config's `monitor`
    metric_label = "loss"  # how report tables call the objective
    direction = "min"
    #: Hyperparameters of `tuning.space` this task takes (others are not declared).
    hyperparameters: tuple[str, ...] = TRAINING_HYPERPARAMETERS
    #: Defaults of `tuning.space.SearchSpace` for this task (the command line overrides).
    default_space: dict = {}
    #: Options of the config that the tuner does not apply (an app's extra training steps).
    ignored_options: tuple[str, ...] = ()
    #: Inference-scope options that the tuner's scoring uses.
    inference_options: tuple[str, ...] = ()
    #: False where the prepared data hold TensorFlow resources (in-graph tokenizers) that
    #: clearing the Keras session between trials would destroy.
    clear_session = True

    def __init__(self, config, work_dir: str | Path):
        self.config = config
        self.work_dir = Path(work_dir)
        self.objective = self.objective or config.monitor

    @staticmethod
    def config_class() -> type:
        raise NotImplementedError

    # ------------------------------------------------------------------ options

    @classmethod
    def tuned_fields(cls) -> dict[str, tuple[str, ...]]:
        """Hyperparameter -> the config fields `configure` writes it into."""
        names = {field.name for field in dataclasses.fields(cls.config_class())}
        return {hp: (FIELDS[hp],) for hp in cls.hyperparameters if FIELDS[hp] in names}

    @classmethod
    def space_options(cls) -> list[str]:
        """The fields of `tuning.space.SearchSpace` that apply to this task."""
        untaken = {name for name in ("input_noise", "dropout") if name not in cls.hyperparameters}
        return [f.name for f in dataclasses.fields(SearchSpace) if f.name not in untaken]

    @classmethod
    def option_names(cls) -> list[str]:
        """The config options the search lists for this task (flags and --config keys):
        not those the search sets (its own flags, the tuned fields) or does not apply."""
        config_cls = cls.config_class()
        hidden = {*SEARCH_OWNED, *cls.ignored_options, *cls.space_options()}
        hidden.update(f.name for f in dataclasses.fields(SearchOptions))
        hidden.update(field for fields in cls.tuned_fields().values() for field in fields)
        listed = [f.name for f in fields_in(config_cls, ("data", "model", "train"))]
        listed += [name for name in cls.inference_options if name not in listed]
        return [name for name in listed if name not in hidden]

    @classmethod
    def excluded_options(cls) -> list[str]:
        listed = set(cls.option_names())
        return [f.name for f in fields_in(cls.config_class(), SCOPES) if f.name not in listed]

    @classmethod
    def make_config(
        cls, overrides: dict, work_dir: str | Path, seed: int, verbose: int, strategy: str
    ):
        """The task's config: its defaults, then `overrides` (options of `option_names`),
        then the search's run directory, seed, verbosity and strategy; checked (ranges,
        choices and the config's own `validate`). Its `monitor` is the objective (what
        learning-rate schedules watch)."""
        owned = sorted(set(overrides) - set(cls.option_names()))
        known = {field.name for field in dataclasses.fields(cls.config_class())}
        if owned and set(owned) <= known:
            raise ValueError(
                f"{cls.name}: {', '.join(flag(name) for name in owned)} cannot be given to a "
                "search: its own flags and the trials set these options, or trials do not "
                "apply them (`python -m tuning search TASK --help` lists the task's options)"
            )
        values = {
            **overrides,
            "run_dir": str(work_dir),
            "seed": seed,
            "verbose": verbose,
            "strategy": strategy,
            **({"monitor": cls.objective} if cls.objective else {}),
        }
        config = config_from_dict(cls.config_class(), values, source=f"{cls.name} options")
        check_config(config)
        return config

    # ------------------------------------------------------------------ trials

    def configure(self, values: dict):
        """The config of one trial: `values` written into the fields they tune."""
        changes = {
            field: values[name]
            for name, fields in self.tuned_fields().items()
            if name in values
            for field in fields
        }
        return dataclasses.replace(self.config, **changes)

    @functools.cached_property
    def prepared(self) -> Prepared:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.prepare()

    def prepare(self) -> Prepared:
        raise NotImplementedError

    def build(self, config, prepared: Prepared):
        raise NotImplementedError

    def build_model(self, values: dict):
        return self.build(self.configure(values), self.prepared)

    def callbacks(self, values: dict) -> list:
        """The callbacks of one trial's fit: the task's own, then its learning-rate
        schedule (`--lr-schedule`, as in the apps)."""
        from apps.common.optimizer import schedule_callbacks

        config = self.configure(values)
        return [*self.prepared.callbacks(), *schedule_callbacks(config, self.direction)]

    @classmethod
    def chance_level(cls, config) -> float | None:
        """The objective of a model that ignores its inputs (a reference line in plots)."""
        return None

    @property
    def vocab_dir(self) -> Path:
        path = self.work_dir / "vocab"
        path.mkdir(parents=True, exist_ok=True)
        return path


def adapter_class(name: str) -> type[Adapter]:
    if name not in ADAPTERS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(ADAPTERS)}")
    module, _, attribute = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_adapter(
    name: str,
    overrides: dict,
    work_dir: str | Path,
    seed: int = 1234,
    verbose: int = 0,
    strategy: str = "default",
) -> Adapter:
    """The adapter of task `name` with its config made from `overrides`."""
    cls = adapter_class(name)
    return cls(cls.make_config(overrides, work_dir, seed, verbose, strategy), work_dir)
