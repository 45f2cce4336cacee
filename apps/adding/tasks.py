"""The adding app's commands: train, evaluate, predict, export, and the offline demo."""

from __future__ import annotations

import dataclasses
import logging

import keras
import numpy as np

from apps.adding.config import AddingConfig
from apps.adding.data import heldout_dataset, train_dataset
from apps.adding.model import build_model
from apps.common.checkpoints import load_checkpoint, save_checkpoint
from apps.common.cli import RunContext
from apps.common.export import load_export
from apps.common.plots import plot_curves
from apps.common.run_dir import RunDir
from apps.common.training import TrainingResult, train_model
from pipelines.procedural import adding_problem

MEAN_PREDICTOR_MSE = 1.0 / 6.0  # always answering 1.0: the variance of U(0,1) + U(0,1)


class StopBelow(keras.callbacks.Callback):
    """Stops training once `monitor` falls below `threshold` (the task is solved)."""

    def __init__(self, monitor: str, threshold: float):
        super().__init__()
        self.monitor = monitor
        self.threshold = threshold

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.threshold:
            self.model.stop_training = True


def _fit(ctx: RunContext, cell_name: str) -> TrainingResult:
    config: AddingConfig = ctx.config
    result = train_model(
        ctx,
        lambda: build_model(config, cell_name),
        train_dataset(config),
        heldout_dataset(config, "valid"),
        extra_callbacks=[StopBelow("val_mse", config.stop_mse)] if config.stop_mse > 0 else (),
    )
    save_checkpoint(result.model, ctx.run_dir.checkpoint_dir / "final.keras")
    return result


def _mse(model: keras.Model, config: AddingConfig, split: str) -> float:
    return float(model.evaluate(heldout_dataset(config, split), verbose=0, return_dict=True)["mse"])


def steps_to_solve(history: dict, config: AddingConfig) -> int | None:
    for epoch, value in enumerate(history.get("val_mse", [])):
        if value < config.solved_mse:
            return (epoch + 1) * config.steps_per_epoch
    return None


def train(ctx: RunContext) -> dict:
    result = _fit(ctx, ctx.config.cell)
    best = load_checkpoint(ctx.run_dir, compile=True)
    metrics = {
        **result.metrics(),
        "valid_mse": _mse(best, ctx.config, "valid"),
        "steps_to_solve": steps_to_solve(result.history, ctx.config),
    }
    print(f"valid MSE: {metrics['valid_mse']:.5f} (predicting the mean: {MEAN_PREDICTOR_MSE:.4f})")
    return ctx.run_dir.write_metrics(metrics)


def evaluate(ctx: RunContext) -> dict:
    split = ctx.args.split
    mse = _mse(load_checkpoint(ctx.run_dir, compile=True), ctx.config, split)
    print(f"{split} MSE: {mse:.5f} (predicting the mean: {MEAN_PREDICTOR_MSE:.4f})")
    return ctx.run_dir.write_evaluation(split, "procedural", {f"{split}_mse": mse})


def predict(ctx: RunContext) -> np.ndarray:
    config: AddingConfig = ctx.config
    examples = list(adding_problem(ctx.args.num_examples, config.length, seed=ctx.args.seed_data))
    inputs = np.stack([x.numpy() for x, _ in examples])
    targets = np.array([float(y) for _, y in examples])
    if ctx.args.export_dir:
        served = load_export(ctx.args.export_dir)
        predictions = served.serve(inputs.astype("float32")).numpy()
    else:
        predictions = load_checkpoint(ctx.run_dir, compile=True).predict(inputs, verbose=0)
    for target, prediction in zip(targets, predictions):
        print(f"target {target:.4f}  predicted {float(prediction):.4f}")
    return predictions


def export(ctx: RunContext):
    model = load_checkpoint(ctx.run_dir, compile=True)
    path = ctx.run_dir.write_export(
        lambda folder: model.export(str(folder), format="tf_saved_model", verbose=False)
    )
    print(f"exported SavedModel: {path}")
    return path


def demo(ctx: RunContext) -> list[dict]:
    """Trains each of `demo_cells` on the adding problem and prints the comparison."""
    config: AddingConfig = ctx.config
    rows, curves, steps = [], {}, {}
    for cell_name in config.demo_cells:
        logging.info("demo: training %s", cell_name)
        sub = RunContext(
            app=ctx.app,
            config=dataclasses.replace(config, cell=cell_name),
            run_dir=RunDir(ctx.run_dir.root / cell_name),
            args=ctx.args,
        )
        keras.utils.set_random_seed(config.seed)
        model, history = _fit(sub, cell_name)
        rows.append(
            {
                "model": cell_name,
                "parameters": int(model.count_params()),
                "test_mse": _mse(load_checkpoint(sub.run_dir, compile=True), config, "test"),
                "steps_to_solve": steps_to_solve(history, config),
                "steps_trained": len(history.get("val_mse", [])) * config.steps_per_epoch,
            }
        )
        curves[cell_name] = history.get("val_mse", [])
        steps[cell_name] = [(i + 1) * config.steps_per_epoch for i in range(len(curves[cell_name]))]
    plot = plot_curves(
        curves,
        ctx.run_dir.plot_dir / "adding_learning_curves.png",
        title=f"Adding problem, T={config.length}: test MSE (dashed: predicting the mean)",
        xlabel="training steps",
        ylabel="test MSE",
        log_y=True,
        x_values=steps,
        hline=MEAN_PREDICTOR_MSE,
    )
    print(format_table(rows, config))
    print(f"plot: {plot}")
    ctx.run_dir.write_metrics({"demo": rows})
    return rows


def format_table(rows: list[dict], config: AddingConfig) -> str:
    header = f"Adding problem, T={config.length} (solved: test MSE < {config.solved_mse}; mean predictor {MEAN_PREDICTOR_MSE:.3f})"
    lines = [
        header,
        f"| {'model':<16} | {'parameters':>10} | {'final test MSE':>14} | {'steps to MSE < ' + str(config.solved_mse):>20} |",
        f"|{'-' * 18}|{'-' * 12}|{'-' * 16}|{'-' * 22}|",
    ]
    for row in rows:
        solved = row["steps_to_solve"]
        solved_text = str(solved) if solved is not None else f"not in {row['steps_trained']}"
        lines.append(
            f"| {row['model']:<16} | {row['parameters']:>10,} | {row['test_mse']:>14.5f} | {solved_text:>20} |"
        )
    return "\n".join(lines)
