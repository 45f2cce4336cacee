"""The demo's small LSTM-variant ablation (Greff et al. 2017) on the adding problem.

For every cell of `demo_ablation_cells`, `demo_trials` independent random trials (learning
rate log-uniform, width log-uniform in [units / 2, units]) train the app's own model
(`apps.adding.model.build_model`, through the tuner's app adapter) for
`demo_ablation_epochs` x `steps_per_epoch` steps on sequences of length
`demo_ablation_length`. The tuner's report prints the per-variant table (with Welch's
t-test against vanilla) and writes the Greff-style box plot.
"""

from __future__ import annotations

import logging
import shutil

from apps.adding.config import AddingConfig
from apps.common.cli import RunContext

#: AddingConfig fields the ablation's trials share with the demo.
_SHARED_FIELDS = ("train_examples", "test_examples", "batch_size", "steps_per_epoch", "seed")


def run_ablation(ctx: RunContext) -> dict:
    """Runs (or resumes) the ablation in RUN_DIR/ablation; returns the tuner's report."""
    from tuning.report import build_report
    from tuning.search import SearchConfig, run_search
    from tuning.space import SearchSpace

    config: AddingConfig = ctx.config
    search_dir = ctx.run_dir.root / "ablation"
    app_config = {name: getattr(config, name) for name in _SHARED_FIELDS}
    app_config.update(length=config.demo_ablation_length or config.length, verbose=0)
    search = SearchConfig(
        run_dir=str(search_dir),
        task="",
        app="adding",
        oracle="random",
        per_variant=config.demo_trials,
        epochs=config.demo_ablation_epochs,
        seed=config.seed,
        space=SearchSpace(
            cells=list(config.demo_ablation_cells),
            units=(max(1, config.units // 2), config.units),
            learning_rate=(1e-3, 3e-2),
            clip_norms=[config.clip_norm],
        ),
        app_config=app_config,
    )
    logging.info(
        "demo: ablation of %s, %d trials each", ", ".join(search.space.cells), config.demo_trials
    )
    run_search(search, command="python -m apps.adding demo")
    report = build_report(
        search_dir,
        title=(
            f"Adding problem, T={app_config['length']}: test MSE of {config.demo_trials} random "
            f"trials per cell ({config.demo_ablation_epochs * config.steps_per_epoch} steps each)"
        ),
    )
    plot = ctx.run_dir.plot_dir / "adding_ablation.png"
    shutil.copyfile(report["plot"], plot)
    report["plot"] = str(plot)
    return report
