"""Options of the diagnostic studies; every field is a command-line flag.

A study is one experiment run from scratch (nothing resumes): each option that shapes it
is declared in the "model" scope, and the study commands list the run and model scopes
only, so that the harness options no study uses (epochs, schedules, averaging,
strategies, precision: every study trains in float32) stay out of `--help`. Options of
one study start with its name (`--flow-...`, `--memory-...`); the defaults keep each
study within 10 minutes on two CPU cores.
"""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig, option
from layers.cell_names import CELL_NAMES

#: The study commands, in the order `all` runs them.
STUDIES = ("gradient-flow", "exploding", "memory-length", "forget-bias", "tbptt", "batching")

#: Cells beyond `CELL_NAMES`: name -> (cell name, constructor arguments over its own).
CELL_VARIANTS: dict[str, tuple[str, dict]] = {
    "rnn_glorot": ("rnn", {"recurrent_initializer": "glorot_uniform"}),
    "rnn_relu": ("rnn", {"activation": "relu"}),
    "lstm_fb0": ("lstm", {"forget_bias": 0.0}),
}
STUDY_CELLS = (*CELL_NAMES, *CELL_VARIANTS)
MEMORY_TASKS = ("sign_memory", "copy")
BATCHING_STRATEGIES = ("shuffle", "src", "tgt", "src_tgt", "tgt_src")
FLOW_CELLS = ("rnn", "rnn_glorot", "rnn_relu", "irnn", "lstm_fb0", "lstm", "gru", "cifg", "nfg",
              "noaf")

_MODEL = "model"


def _cells(default: tuple[str, ...], help: str):
    return option(default_factory=lambda: list(default), help=help, scope=_MODEL,
                  choices=STUDY_CELLS)


@dataclasses.dataclass
class DiagnosticsConfig(TrainConfig):
    verbose: int = 0
    seed: int = option(1234, "seed of the data and of the first run's weights; studies over "
                       "several seeds use seed, seed+1, ...", scope=_MODEL, at_least=0)
    learning_rate: float = option(0.01, "Adam learning rate (every study but exploding)",
                                  scope=_MODEL, above=0)
    clip_norm: float = option(1.0, "global gradient-norm clipping of the Adam studies; 0 "
                              "disables", scope=_MODEL, at_least=0)
    batch_size: int = option(32, "sequences a batch (toy tasks and the language model's "
                             "parallel streams)", scope=_MODEL, at_least=1)
    units: int = option(32, "units of the recurrent layer on the toy tasks", scope=_MODEL,
                        at_least=1)
    valid_examples: int = option(256, "held-out sequences each toy-task score is measured on",
                                 scope=_MODEL, at_least=1)

    # gradient-flow
    flow_cells: list[str] = _cells(FLOW_CELLS, "gradient-flow: the cells (rnn_glorot: tanh RNN "
                                   "with Glorot recurrent init; rnn_relu: ReLU RNN, orthogonal "
                                   "init; lstm_fb0: forget bias 0)")
    flow_length: int = option(100, "gradient-flow: adding-problem length T", scope=_MODEL,
                              at_least=2)
    flow_steps: int = option(400, "gradient-flow: training steps between the two measurements",
                             scope=_MODEL, at_least=0)

    # exploding
    exploding_radius: float = option(1.5, "exploding: spectral radius of the initial recurrent "
                                     "matrix (a scaled orthogonal one)", scope=_MODEL, above=0)
    exploding_length: int = option(50, "exploding: adding-problem length T", scope=_MODEL,
                                   at_least=2)
    exploding_steps: int = option(600, "exploding: SGD steps of each run", scope=_MODEL,
                                  at_least=1)
    exploding_learning_rate: float = option(0.05, "exploding: SGD learning rate (no momentum)",
                                            scope=_MODEL, above=0)
    exploding_clip_norm: float = option(1.0, "exploding: the clip-by-norm run's threshold",
                                        scope=_MODEL, above=0)
    exploding_clip_value: float = option(0.1, "exploding: the clip-by-value run's threshold",
                                         scope=_MODEL, above=0)

    # memory-length
    memory_cells: list[str] = _cells(("rnn", "irnn", "lstm", "gru"), "memory-length: the cells")
    memory_tasks: list[str] = option(default_factory=lambda: list(MEMORY_TASKS),
                                     help="memory-length: the tasks", scope=_MODEL,
                                     choices=MEMORY_TASKS)
    memory_lengths: list[int] = option(default_factory=lambda: [10, 20, 50, 100, 200],
                                       help="memory-length: the gaps T", scope=_MODEL,
                                       at_least=1)
    memory_seeds: int = option(3, "memory-length: runs (seeds) per cell, task and T",
                               scope=_MODEL, at_least=1)
    memory_steps: int = option(200, "memory-length: most training steps of a run (it stops "
                               "once it succeeds)", scope=_MODEL, at_least=1)
    memory_eval_every: int = option(50, "memory-length: steps between validation checks",
                                    scope=_MODEL, at_least=1)
    memory_accuracy: float = option(0.95, "memory-length: a run succeeds once its validation "
                                    "accuracy reaches this", scope=_MODEL, above=0, at_most=1)
    sign_noise: float = option(0.2, "memory-length: standard deviation of the noise that "
                               "follows the sign", scope=_MODEL, at_least=0)
    copy_length: int = option(1, "memory-length: symbols to copy in the copy task",
                              scope=_MODEL, at_least=1)
    copy_symbols: int = option(4, "memory-length: alphabet of the copy task", scope=_MODEL,
                               at_least=2)

    # forget-bias
    forget_bias_seeds: int = option(5, "forget-bias: runs (seeds) per bias and task",
                                    scope=_MODEL, at_least=1)
    forget_bias_length: int = option(50, "forget-bias: adding-problem length T (the "
                                     "long-range task)", scope=_MODEL, at_least=2)
    forget_bias_steps: int = option(500, "forget-bias: training steps on the adding problem",
                                    scope=_MODEL, at_least=1)
    forget_bias_lm_steps: int = option(300, "forget-bias: training steps of the language model",
                                       scope=_MODEL, at_least=1)
    forget_bias_eval_every: int = option(50, "forget-bias: steps between validation points",
                                         scope=_MODEL, at_least=1)

    # the character language model (forget-bias, tbptt)
    lm_units: int = option(128, "language model: LSTM units", scope=_MODEL, at_least=1)
    lm_bptt: int = option(50, "forget-bias: truncation window of the language model",
                          scope=_MODEL, at_least=1)
    lm_train_chars: int = option(200_000, "language model: characters of the training text",
                                 scope=_MODEL, at_least=1000)
    lm_valid_chars: int = option(20_000, "language model: characters of the validation text "
                                 "(another seed)", scope=_MODEL, at_least=200)

    # tbptt
    tbptt_windows: list[int] = option(default_factory=lambda: [5, 10, 35, 70],
                                      help="tbptt: the truncation windows k", scope=_MODEL,
                                      at_least=1)
    tbptt_tokens: int = option(1_500_000, "tbptt: training characters seen by every window",
                               scope=_MODEL, at_least=1)
    tbptt_evaluations: int = option(8, "tbptt: validation points along each run",
                                    scope=_MODEL, at_least=1)

    # batching
    batching_strategies: list[str] = option(
        default_factory=lambda: list(BATCHING_STRATEGIES),
        help="batching: the Morishita et al. strategies", scope=_MODEL,
        choices=BATCHING_STRATEGIES)
    batching_steps: int = option(400, "batching: training steps of each strategy", scope=_MODEL,
                                 at_least=1)
    translation_pairs: int = option(20_000, "batching: training sentence pairs", scope=_MODEL,
                                    at_least=1)
    translation_max_length: int = option(40, "batching: longest source sentence", scope=_MODEL,
                                         at_least=2)
    translation_units: int = option(64, "batching: units of the encoder and the decoder",
                                    scope=_MODEL, at_least=1)
    translation_batch_size: int = option(64, "batching: sentence pairs a batch", scope=_MODEL,
                                         at_least=1)

    def validate(self) -> None:
        if self.memory_eval_every > self.memory_steps:
            raise ValueError(
                f"--memory-eval-every {self.memory_eval_every} exceeds --memory-steps "
                f"{self.memory_steps}: no run would ever be checked"
            )
        for name in ("flow_cells", "memory_cells", "memory_tasks", "memory_lengths",
                     "tbptt_windows", "batching_strategies"):
            if not getattr(self, name):
                raise ValueError(f"--{name.replace('_', '-')} is empty: name at least one")
