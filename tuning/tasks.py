"""The built-in tasks: JSB Chorales (Greff et al.'s music task) and the procedural copy and
sign-memory tasks of `pipelines.procedural`, as adapters (`tuning.adapters`). Their
models are one recurrent layer and a read-out (`tuning.task_models`); their options are
the dataclasses below. (The adding problem is the adding app: `tuning.app_adapters`.)
"""

from __future__ import annotations

import dataclasses
import math

from apps.common.config import TrainConfig, option
from layers.cell_names import CELL_NAMES
from tuning.adapters import Adapter, Prepared
from tuning.space import HYPERPARAMETER_NAMES

#: The copy task: symbols to remember, and how many of them.
COPY_SYMBOLS = 8
COPY_LENGTH = 10


@dataclasses.dataclass
class TaskModelConfig(TrainConfig):
    """The model of a built-in task: one recurrent layer over the (noisy) inputs."""

    cell: str = option("lstm", "the recurrent cell", scope="model", choices=CELL_NAMES)
    units: int = option(64, "units of the recurrent layer", scope="model", at_least=1)
    input_noise: float = option(0.0, "standard deviation of Gaussian noise added to the "
                                "inputs in training", scope="model", at_least=0)
    dropout: float = option(0.0, "input dropout of the cell", scope="model", at_least=0, below=1)


@dataclasses.dataclass
class JSBConfig(TaskModelConfig):
    data: str = option(
        "", 'JSON file of chorales: {"train": [...], "valid": [...], optionally "test": '
        "[...]}, each chorale a list of steps of MIDI pitches (jsb_chorales.json of the "
        "pyro-ppl datasets)", scope="data")
    batch_size: int = 32
    monitor: str = "val_nll"

    def validate(self) -> None:
        if not self.data:
            raise ValueError(
                "the jsb task needs its data file: --data PATH to a JSON file "
                '{"train": [...], "valid": [...]} of chorales (lists of steps of MIDI '
                "pitches), e.g. jsb_chorales.json of the pyro-ppl datasets"
            )


@dataclasses.dataclass
class ProceduralConfig(TaskModelConfig):
    length: int = option(50, "sequence length T (copy: the blanks between the symbols and "
                         "their recall)", scope="model", at_least=1)
    train_examples: int = option(4_000, "training sequences (drawn once, by --seed)",
                                 scope="data", at_least=1)
    valid_examples: int = option(1_000, "validation sequences (the objective)", scope="data",
                                 at_least=1)
    test_examples: int = option(1_000, "test sequences (scored once per trial, at its best "
                                "epoch)", scope="data", at_least=1)
    batch_size: int = 32


class JSBChorales(Adapter):
    """Next-step prediction of 88-dimensional binary piano-roll frames (MIDI 21..108).

    Loss and metric: the negative log-likelihood per time step, summed over the 88
    Bernoulli outputs (Boulanger-Lewandowski et al. 2012; Greff et al. 2017, Sec. 4.3).
    The model is Greff's: one recurrent layer, a sigmoid (here: logit) output layer.
    """

    name = "jsb"
    description = "JSB Chorales: next-frame negative log-likelihood (nats per time step)"
    metric_label = "NLL"
    hyperparameters = HYPERPARAMETER_NAMES
    default_space = {
        "units": [20, 200],
        "learning_rate": [1e-4, 3e-2],
        "input_noise": [0.0, 0.5],
        "dropout": [0.0, 0.0],
        "clip_norms": [1.0],
    }

    @staticmethod
    def config_class():
        return JSBConfig

    def prepare(self) -> Prepared:
        from tuning.task_models import jsb_data

        return jsb_data(self.config)

    def build(self, config, prepared):
        from tuning.task_models import jsb_model

        return jsb_model(config)


class _ProceduralTask(Adapter):
    hyperparameters = HYPERPARAMETER_NAMES
    default_space = {"units": [16, 128], "learning_rate": [1e-4, 3e-2], "clip_norms": [1.0]}
    metric_label = "cross-entropy"

    @staticmethod
    def config_class():
        return ProceduralConfig

    def prepare(self) -> Prepared:
        from tuning.task_models import procedural_data

        return procedural_data(self.name, self.config)

    def build(self, config, prepared):
        from tuning import task_models

        return task_models.MODELS[self.name](config)


class CopyTask(_ProceduralTask):
    """The copy task (Arjovsky et al. 2016): reproduce 10 symbols after `length` blanks;
    cross-entropy per step."""

    name = "copy"
    description = "copy task: cross-entropy per step (nats)"

    @classmethod
    def chance_level(cls, config) -> float:
        """Memoryless guessing: 10 log 8 / (length + 20)."""
        return COPY_LENGTH * math.log(COPY_SYMBOLS) / (config.length + 2 * COPY_LENGTH)


class SignMemoryTask(_ProceduralTask):
    """Remember the sign of the first of `length` noisy inputs; binary cross-entropy."""

    name = "sign_memory"
    description = "sign memory: binary cross-entropy (chance 0.693)"
    default_space = {"units": [8, 64], "learning_rate": [1e-4, 3e-2], "clip_norms": [1.0]}

    @classmethod
    def chance_level(cls, config) -> float:
        return math.log(2.0)
