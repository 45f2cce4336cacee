"""The options of `python -m tuning search` and `demo`, each declared once with its help
and its range or choices (as the apps' options: `apps.common.config.option`), checked
before any work starts. Nothing here imports TensorFlow."""

from __future__ import annotations

import dataclasses
from typing import Any

from apps.common.config import check_config, option
from layers.cell_names import CELL_NAMES
from tuning.space import SearchSpace

ORACLES = ("random", "bayesian", "hyperband")
STRATEGIES = ("default", "mirrored", "multi_worker")


class _Options:
    """Options checked by `apps.common.config.check_config` (ranges, choices, validate)."""

    def validate(self) -> None:
        """Cross-field checks (none unless a subclass has some)."""


@dataclasses.dataclass
class SearchOptions(_Options):
    """How to search (the flags of `search` besides the space and the task's options)."""

    run_dir: str = option("", "the search directory (required); rerun the same command "
                          "with it to resume", scope="run")
    oracle: str = option("random", "how trials are proposed: random search, bayesian "
                         "optimisation (a Gaussian process), hyperband (many short trials, "
                         "the best continued)", choices=ORACLES)
    max_trials: int = option(20, "trials of a joint search in all (--per-variant replaces "
                             "it; hyperband sets its own)", at_least=1)
    per_variant: int = option(0, "> 0: this many independent trials for every cell "
                              "(Greff et al.'s design) instead of one joint search",
                              at_least=0)
    epochs: int = option(10, "epochs of a trial (hyperband: the most epochs of one model)",
                         at_least=1)
    early_stopping_patience: int = option(0, "stop a trial after this many epochs without a "
                                          "better objective; 0 disables", at_least=0)
    executions_per_trial: int = option(1, "models trained per trial, their objectives "
                                       "averaged", at_least=1)
    seed: int = option(1234, "seed of the oracle and the data; trial t's weights use seed + t",
                       at_least=0)
    strategy: str = option(
        "default", "tf.distribute strategy of each trial's model: default (one device), "
        "mirrored (all local GPUs, or the CPUs), multi_worker (MultiWorkerMirroredStrategy "
        "from TF_CONFIG)", choices=STRATEGIES)
    max_consecutive_failed_trials: int = option(20, "stop the search after this many failed "
                                                "trials in a row", at_least=1)
    hyperband_factor: int = option(3, "hyperband: keep 1 / factor of the trials of a round "
                                   "for the next", at_least=2)
    hyperband_iterations: int = option(1, "hyperband: sweeps over all its brackets",
                                       at_least=1)
    initial_points: int = option(0, "bayesian: random trials before the Gaussian process; 0: "
                                 "keras-tuner's default (3 per hyperparameter)", at_least=0)
    verbose: int = option(0, "Keras progress output inside trials: 0 silent, 1 progress bar, "
                          "2 one line an epoch", scope="run", choices=(0, 1, 2))

    def validate(self) -> None:
        if not self.run_dir:
            raise ValueError("--run-dir is required: the search directory (rerun the same "
                             "command with it to resume)")
        if self.oracle == "hyperband" and self.per_variant:
            raise ValueError(
                "--per-variant needs --oracle random or bayesian: Hyperband allocates "
                "epochs across one joint bracket of trials, not a fixed number per cell"
            )


@dataclasses.dataclass
class SearchConfig(SearchOptions):
    """Everything that defines a search (what RUN_DIR/search.json records)."""

    task: str = ""  # a name of tuning.adapters.ADAPTERS
    space: SearchSpace = dataclasses.field(default_factory=SearchSpace)
    task_config: dict = dataclasses.field(default_factory=dict)  # the task's options given

    #: Fields that may change between the invocations of one search.
    MUTABLE = (
        "run_dir",
        "max_trials",
        "per_variant",
        "verbose",
        "strategy",
        "max_consecutive_failed_trials",
    )

    def validate(self) -> None:
        super().validate()
        check_config(self.space)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchConfig:
        values = dict(values)
        values["space"] = SearchSpace(**values.get("space", {}))
        return cls(**values)


@dataclasses.dataclass
class DemoOptions(_Options):
    """`python -m tuning demo`: a small LSTM-variant ablation on the adding problem."""

    run_dir: str = option("", "the demo's search directory (rerun to resume; none: "
                          "runs/tuning-demo/<timestamp>)", scope="run")
    trials: int = option(3, "independent random trials of every cell", at_least=1)
    cells: list[str] = option(
        default_factory=lambda: ["vanilla", "nfg", "noaf", "cifg", "gru", "rnn"],
        help="cells to compare (vanilla is the baseline of the t-tests)", choices=CELL_NAMES)
    length: int = option(30, "sequence length T of the adding problem", at_least=2)
    epochs: int = option(5, "epochs of 100 training steps (batches of 64) per trial",
                         at_least=1)
    seed: int = option(1234, "seed of the oracle and the data", at_least=0)


@dataclasses.dataclass
class ReportOptions(_Options):
    """`python -m tuning report RUN_DIR`: tables and plots of a search."""

    metric: str = option("", "the metric of the tables; none: the test metric if every trial "
                         "has one, else the objective")
    baseline: str = option("vanilla", "the cell the others are compared with")
    alpha: float = option(0.05, "significance level of Welch's t-tests", above=0, below=1)
    top_fraction: float = option(0.1, "the best fraction of trials (by the objective) that "
                                 "the second panel and the top t-tests use", above=0, at_most=1)
    output: str = option("", "folder of report.md, report.json and the plots; none: "
                         "RUN_DIR/report", scope="run")
    title: str = option("", "title of the plot; none: the task and the metric")
    note: str = option("", "free text stored with the --benchmark-json figures")
    benchmark_json: str = option("", "also write flat figures here (e.g. "
                                 "benchmarks/results/ablation_jsb.json)", scope="run")
