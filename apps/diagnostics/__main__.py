"""`python -m apps.diagnostics <study> --run-dir DIR`: the claims of the RNN literature,
measured with the suite's own layers on procedural data.

The studies are the commands; there is no train/evaluate/predict/export: a study trains
its many small models from scratch, measures them and keeps only its table and figure.
"""

from __future__ import annotations

from apps.common.cli import Command, main_guard, run_app
from apps.diagnostics.config import DiagnosticsConfig

TASKS = "apps.diagnostics.tasks"
SCOPES = ("run", "model")  # every option of a study is in "model" (see config.py)
HELP = {
    "gradient-flow": "||dL_T/dh_t|| against t per cell, at initialisation and after training "
                     "on the adding problem (vanishing gradients; the LSTM's cell path)",
    "exploding": "a tanh RNN with recurrent spectral radius > 1: gradient norms and loss with "
                 "no clipping, clipping by norm, clipping by value (Pascanu et al. 2013)",
    "memory-length": "success rate against the gap T on sign memory and copy, per cell",
    "forget-bias": "LSTM forget bias 0 vs 1 on the adding problem and a character language "
                   "model, learning curves over seeds (Jozefowicz et al. 2015)",
    "tbptt": "truncation windows k of the language model at equal characters seen: held-out "
             "perplexity and characters/s",
    "batching": "the mini-batch strategies of Morishita et al. 2017 on a toy translation "
                "corpus: padding, tokens/s and held-out loss after equal steps",
    "all": "every study in turn, into one run directory",
}
COMMANDS = {
    name: Command(f"{TASKS}:{'run_all' if name == 'all' else name.replace('-', '_')}", text,
                  creates_run=True, scopes=SCOPES)
    for name, text in HELP.items()
}


def main(argv: list[str] | None = None):
    return run_app(
        "diagnostics",
        DiagnosticsConfig,
        COMMANDS,
        argv,
        description="Diagnostic studies of recurrent networks: each prints a table, writes "
        "plots/<study>.png and a table in metrics.json. The studies are the commands (no "
        "train/evaluate/predict/export: nothing here is a model to keep).",
    )


if __name__ == "__main__":
    main_guard(main)
