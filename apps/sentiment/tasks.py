"""The sentiment app's commands: train, evaluate, predict, export."""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from apps.common.checkpoints import load_checkpoint, save_checkpoint
from apps.common.cli import RunContext
from apps.common.ensemble import member_config, members_of, refuse_ensemble
from apps.common.export import export_module, load_export
from apps.common.run_dir import RunDir
from apps.common.serving import ServingOptions, serving_options
from apps.common.training import train_model
from apps.sentiment import ensemble
from apps.sentiment.config import SentimentConfig
from apps.sentiment.data import (
    TextEncoder,
    build_vocabulary,
    data_name,
    heldout_split,
    load_split,
    make_dataset,
    train_validation_split,
)
from apps.sentiment.export import SIGNATURE, SentimentServer
from apps.sentiment.model import build_compiled_model
from apps.sentiment.pretrain import pretrain, transfer

logger = logging.getLogger(__name__)

#: The issue's quality target: IMDB test accuracy.
TARGET_TEST_ACCURACY = 0.9


def train(ctx: RunContext) -> dict:
    config: SentimentConfig = ctx.config
    refuse_ensemble(ctx.run_dir, "train")
    texts, labels = load_split(config, "train")
    (train_texts, train_labels), (val_texts, val_labels) = train_validation_split(
        texts, labels, config.valid_fraction, config.seed
    )
    build_vocabulary(config, train_texts, ctx.run_dir.vocab_dir)
    encoder = TextEncoder(config, ctx.run_dir.vocab_dir)
    train_data = make_dataset(train_texts, train_labels, encoder, config, training=True)
    val_data = (
        make_dataset(val_texts, val_labels, encoder, config, training=False)
        if len(val_texts)
        else None
    )
    language_model = (
        pretrain(ctx, train_data, val_data, encoder.vocabulary_size) if config.pretrain_epochs else None
    )

    def build() -> keras.Model:
        model = build_compiled_model(config, encoder.vocabulary_size)
        return transfer(model, language_model) if language_model is not None else model

    result = train_model(ctx, build, train_data, val_data)
    save_checkpoint(result.model, ctx.run_dir.checkpoint_dir / "final.keras")
    metrics = {
        "train_examples": len(train_texts),
        "validation_examples": len(val_texts),
        "vocabulary_size": encoder.vocabulary_size,
        **result.metrics(),
    }
    if val_data is not None:
        best = load_model(ctx.run_dir)
        result = best.evaluate(val_data, verbose=0, return_dict=True)
        metrics["validation_accuracy"] = float(result["accuracy"])
        metrics["validation_loss"] = float(result["loss"])
        print(f"validation accuracy: {metrics['validation_accuracy']:.4f}")
    return ctx.run_dir.write_metrics(metrics)


def load_model(run_dir: RunDir, compile: bool = True) -> keras.Model:
    import apps.sentiment.model  # noqa: F401  (registers the app's layers)

    return load_checkpoint(run_dir, compile=compile)


def _single_server(run_dir: RunDir, config: SentimentConfig, options: ServingOptions | None) -> SentimentServer:
    # Without the optimizer: its slots would triple the size of the export.
    model = load_model(run_dir, compile=False)
    return SentimentServer(model, TextEncoder(config, run_dir.vocab_dir), options)


def make_server(
    ctx: RunContext, options: ServingOptions | None = None
) -> SentimentServer | ensemble.EnsembleServer:
    """The serving module of a run, or of an ensemble run (`ensemble` command), with the
    serving levers `options` (default: none)."""
    members = members_of(ctx.run_dir)
    if members is None:
        return _single_server(ctx.run_dir, ctx.config, options)
    return ensemble.EnsembleServer([
        _single_server(RunDir(member), member_config(member, SentimentConfig), options)
        for member in members
    ])


def evaluate(ctx: RunContext) -> dict:
    config: SentimentConfig = ctx.config
    split = ctx.args.split
    start = time.time()
    if members_of(ctx.run_dir) is not None:
        return _evaluate_ensemble(ctx, split, start)
    model = load_model(ctx.run_dir)
    encoder = TextEncoder(config, ctx.run_dir.vocab_dir)
    texts, labels = heldout_split(config, split)
    result = model.evaluate(
        make_dataset(texts, labels, encoder, config, training=False), verbose=0, return_dict=True
    )
    metrics = {
        f"{split}_accuracy": float(result["accuracy"]),
        f"{split}_loss": float(result["loss"]),
        f"{split}_examples": len(texts),
        "evaluate_wall_time_s": round(time.time() - start, 1),
    }
    print(f"{split} accuracy: {metrics[f'{split}_accuracy']:.4f} on {len(texts)} reviews")
    merged = ctx.run_dir.write_evaluation(split, data_name(config, split), metrics)
    if getattr(ctx.args, "results_file", ""):
        write_results(Path(ctx.args.results_file), ctx.args.results_name, merged, config)
    return merged


def _evaluate_ensemble(ctx: RunContext, split: str, start: float) -> dict:
    server = make_server(ctx)
    texts, labels = heldout_split(ctx.config, split)
    metrics = {
        key.replace("test_", f"{split}_"): value
        for key, value in ensemble.evaluate_members(server, texts, labels).items()
    }
    metrics["evaluate_wall_time_s"] = round(time.time() - start, 1)
    members = ", ".join(f"{accuracy:.4f}" for accuracy in metrics[f"member_{split}_accuracies"])
    print(f"{split} accuracy: {metrics[f'{split}_accuracy']:.4f} on {len(texts)} reviews")
    print(f"members: {members}")
    merged = ctx.run_dir.write_evaluation(split, data_name(ctx.config, split), metrics, "ensemble")
    if getattr(ctx.args, "results_file", ""):
        members = members_of(ctx.run_dir)
        configs = [member_config(member, SentimentConfig) for member in members]
        merged_results = {
            **merged,
            "cell": "+".join(dict.fromkeys(member.cell for member in configs)),
            "member_commands": [_command_line(member) for member in configs],
        }
        command = "python -m apps.sentiment ensemble --members " + " ".join(
            _shown(member) for member in members
        )
        write_results(
            Path(ctx.args.results_file), ctx.args.results_name, merged_results, ctx.config, command
        )
    return merged


def write_results(
    path: Path, name: str, metrics: dict, config: SentimentConfig, command: str = ""
) -> dict:
    """Merges one run's figures into a flat benchmark JSON (`<name>_<metric>` keys);
    `command` defaults to the train command of `config`. The file-wide descriptions
    (dataset, machine) are kept when present; `best_test_accuracy` and `target_met` are
    recomputed over every run's test accuracy in the file."""
    prefix = f"{name}_" if name else ""
    results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    results.setdefault("benchmark", "sentiment")
    results.setdefault("dataset", f"IMDB (TFDS {config.tfds_name} or local files)")
    results.setdefault("target_test_accuracy", TARGET_TEST_ACCURACY)
    results.update(
        {
            f"{prefix}date": datetime.date.today().isoformat(),
            f"{prefix}machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no accelerator",
            f"{prefix}cell": metrics.get("cell", config.cell),
            f"{prefix}command": command or _command_line(config),
        }
    )
    for key in (
        "test_accuracy",
        "test_loss",
        "test_examples",
        "valid_accuracy",
        "valid_loss",
        "valid_examples",
        "member_valid_accuracies",
        "validation_accuracy",
        "train_wall_time_s",
        "train_cpu_time_s",
        "epochs_trained",
        "parameters",
        "members",
        "member_test_accuracies",
        "member_commands",
    ):
        if key in metrics:
            value = metrics[key]
            if key == "members":
                value = [_shown(member) for member in value]
            results[prefix + key] = value
    runs = {
        key[: -len("_test_accuracy")] or key: value
        for key, value in results.items()
        if key.endswith("test_accuracy")
        and key not in ("best_test_accuracy", "target_test_accuracy")
        and isinstance(value, (int, float))
    }
    best = max(runs, key=runs.get)
    results["best_test_accuracy"] = runs[best]
    results["best_run"] = best
    results["target_met"] = runs[best] >= results["target_test_accuracy"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    logger.info("results merged into %s", path)
    return results


def _shown(path) -> str:
    """A run directory as shown in commands: relative to the working directory if inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _command_line(config: SentimentConfig) -> str:
    """The train command that reproduces the run (its config, as flags)."""
    defaults = SentimentConfig()
    flags = [
        f"--{name.replace('_', '-')} {_flag_value(value)}"
        for name, value in sorted(vars(config).items())
        if name not in ("run_dir", "verbose") and value != getattr(defaults, name)
    ]
    return " ".join(["python -m apps.sentiment train", *flags])


def _flag_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _read_inputs(args) -> list[bytes]:
    texts = [text.encode("utf-8", "surrogateescape") for text in args.texts]
    if args.input_file:
        if not Path(args.input_file).is_file():
            raise FileNotFoundError(f"--input-file {args.input_file}: no such file")
        data = Path(args.input_file).read_bytes()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        texts.extend(line.rstrip(b"\r") for line in lines)
    if not texts:
        raise ValueError("predict: give reviews as arguments or --input-file FILE (one per line)")
    return texts


def predict(ctx: RunContext) -> np.ndarray:
    texts = _read_inputs(ctx.args)
    if ctx.args.export_dir:
        served = load_export(ctx.args.export_dir)
        outputs = served.signatures[SIGNATURE](texts=tf.constant(texts, tf.string))
    elif ctx.run_dir is not None:
        server = make_server(ctx)  # a named reference: `serve` holds its module weakly
        outputs = server.serve(tf.constant(texts, tf.string))
    else:
        raise ValueError("predict: give --run-dir RUN_DIR (made by train) or --export-dir EXPORT")
    probabilities = outputs["probability"].numpy()
    num_tokens = outputs["num_tokens"].numpy()
    for text, probability, count in zip(texts, probabilities, num_tokens):
        label = "positive" if probability >= 0.5 else "negative"
        preview = text.decode("utf-8", "replace").replace("\n", " ")
        preview = preview[:60] + ("..." if len(preview) > 60 else "")
        print(f"{probability:.4f}  {label:<8}  {count:>6} tokens  {preview}")
    sys.stdout.flush()
    return probabilities


def export(ctx: RunContext) -> Path:
    server = make_server(ctx, serving_options(ctx.args))
    path = export_module(server, ctx.run_dir, signatures={SIGNATURE: server.serve})
    print(f"exported SavedModel: {path}")
    return path
