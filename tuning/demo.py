"""`python -m tuning demo`: a small LSTM-variant ablation (Greff et al. 2017) on the adding
problem, run by `make demo` after the adding app's own demo.

For every cell of `--cells`, `--trials` independent random trials (learning rate
log-uniform in [1e-3, 3e-2], width log-uniform in [32, 64], Adam, clipping 1.0) train the
adding app's model (through its adapter) for `--epochs` epochs of the app's
steps_per_epoch batches on sequences of length `--length`. The report prints the
per-variant table (Welch's t-test against vanilla) and writes the Greff-style box plot.
"""

from __future__ import annotations

from pathlib import Path

from apps.adding.config import AddingConfig
from apps.common.run_dir import RunDir
from tuning.config import DemoOptions, SearchConfig
from tuning.space import SearchSpace


def demo_search(options: DemoOptions, run_dir: str | Path) -> SearchConfig:
    """The search the demo runs (into `run_dir`)."""
    return SearchConfig(
        run_dir=str(run_dir),
        task="adding",
        oracle="random",
        per_variant=options.trials,
        epochs=options.epochs,
        seed=options.seed,
        space=SearchSpace(
            cells=list(options.cells),
            units=[32, 64],
            learning_rate=[1e-3, 3e-2],
            clip_norms=[1.0],
        ),
        task_config={"length": options.length},
    )


def run_demo(options: DemoOptions, command: str) -> dict:
    """Runs (or resumes) the demo's search, prints its report; returns the report."""
    from tuning.report import build_report
    from tuning.search import run_search

    run_dir = RunDir.create("tuning-demo", options.run_dir).root
    run_search(demo_search(options, run_dir), command=command)
    steps = options.epochs * AddingConfig().steps_per_epoch
    report = build_report(
        run_dir,
        title=f"Adding problem, T={options.length}: test MSE of {options.trials} random "
        f"trials per cell ({steps} steps each)",
    )
    print(report["markdown"].split("\n\n![")[0])
    print(f"plot: {report['plot']}")
    return report
