"""Ensembles of trained sentiment runs: the mean of their positive-class probabilities.

    python -m apps.sentiment ensemble --members RUN_A RUN_B ... --run-dir ENSEMBLE
    python -m apps.sentiment evaluate|predict|export --run-dir ENSEMBLE

Each member keeps its own tokeniser, vocabulary and model (words and SentencePiece
members mix freely); the ensemble's run directory holds `members.json` (the members' run
directories) and a config.json for its data settings (the first member's, overridden by
the flags given to `ensemble`). The members' training times add up: the ensemble's
`train_wall_time_s` is their sum, the time to train them one after the other.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.common.cli import RunContext
from apps.common.config import config_from_dict, resolve_config, save_config
from apps.common.run_dir import RunDir
from apps.sentiment.config import SentimentConfig
from apps.sentiment.export import SentimentServer

logger = logging.getLogger(__name__)

MEMBERS_FILE = "members.json"
#: Training figures of the members that add up to the ensemble's.
SUMMED_METRICS = ("train_wall_time_s", "train_cpu_time_s", "parameters")


class EnsembleServer(tf.Module):
    """`serve(texts)` as `SentimentServer.serve`, with `probability` the mean of the
    members' probabilities; `num_tokens` is the first member's count."""

    def __init__(self, members: list[SentimentServer]):
        super().__init__(name="sentiment_ensemble")
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(self, texts):
        outputs = [member.serve(texts) for member in self.members]
        probability = tf.add_n([output["probability"] for output in outputs]) / len(outputs)
        return {"probability": probability, "num_tokens": outputs[0]["num_tokens"]}


def member_config(run_dir: str | Path) -> SentimentConfig:
    path = RunDir(run_dir).config_path
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: not a sentiment run directory (no config.json)")
    values = json.loads(path.read_text(encoding="utf-8"))
    return config_from_dict(SentimentConfig, values, str(path))


def members_of(run_dir: RunDir) -> list[Path] | None:
    """The member run directories of an ensemble run, or None for a single run."""
    path = run_dir.root / MEMBERS_FILE
    if not path.exists():
        return None
    return [Path(member) for member in json.loads(path.read_text(encoding="utf-8"))["members"]]


def create(ctx: RunContext) -> list[Path]:
    """The `ensemble` command: checks the members and writes the ensemble's run folder."""
    members = [Path(member).resolve() for member in ctx.args.members]
    if len(set(members)) != len(members):
        raise ValueError(f"--members: a run is listed twice in {[str(m) for m in members]}")
    for member in members:
        if members_of(RunDir(member)) is not None:
            raise ValueError(f"--members: {member} is itself an ensemble; list its members")
        member_config(member)  # a run directory
        checkpoints = member / "checkpoints"
        if not any((checkpoints / name).exists() for name in ("best.keras", "final.keras")):
            raise FileNotFoundError(f"--members: {member} has no checkpoint; train it first")
    if ctx.run_dir.root.resolve() in members:
        raise ValueError("--run-dir: the ensemble needs a folder of its own, not a member's")
    base = dataclasses.asdict(member_config(members[0]))
    config = resolve_config(SentimentConfig, ctx.args, base=base)
    config.run_dir = str(ctx.run_dir.root)
    save_config(config, ctx.run_dir.config_path)
    (ctx.run_dir.root / MEMBERS_FILE).write_text(
        json.dumps({"members": [str(member) for member in members]}, indent=2) + "\n",
        encoding="utf-8",
    )
    summed = {}
    for key in SUMMED_METRICS:
        values = [RunDir(member).read_metrics().get(key) for member in members]
        if all(value is not None for value in values):
            summed[key] = round(sum(values), 1)
    ctx.run_dir.write_metrics({"members": [str(member) for member in members], **summed})
    print(f"ensemble of {len(members)} runs: {ctx.run_dir.root}")
    return members


def probabilities(server, texts: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """`server.serve` over raw texts in batches of similar length (little padding);
    the probabilities come back in the order of `texts`."""
    order = np.argsort([len(text) for text in texts], kind="stable")
    result = np.empty(len(texts), np.float32)
    for start in range(0, len(texts), batch_size):
        index = order[start : start + batch_size]
        batch = tf.constant([texts[i] for i in index], tf.string)
        result[index] = server.serve(batch)["probability"].numpy()
    return result


def evaluate_members(ensemble: EnsembleServer, texts: np.ndarray, labels: np.ndarray) -> dict:
    """Test accuracy of each member and of the mean of their probabilities."""
    member_probabilities = [probabilities(member, texts) for member in ensemble.members]
    labels = np.asarray(labels, np.float64)
    mean = np.mean(member_probabilities, axis=0).astype(np.float64)

    def accuracy(probability):  # Keras's binary accuracy: positive when above 0.5
        return float(np.mean((probability > 0.5) == (labels > 0.5)))

    clipped = np.clip(mean, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    return {
        "test_accuracy": accuracy(mean),
        "test_loss": float(loss),
        "member_test_accuracies": [accuracy(p) for p in member_probabilities],
        "test_examples": len(texts),
    }
