"""batching: the mini-batch strategies of Morishita, Oda, Neubig et al. (2017) on the toy
translation corpus (`pipelines.procedural.reversal_translation`).

Every strategy (`pipelines.batching.morishita_batches`: shuffle; sort by source; by
target; by source then target; by target then source) trains the same encoder-decoder
from the same weights for the same number of steps of `translation_batch_size` pairs.
Measured: the padded fraction of the batches (source and target), the real (non-pad)
tokens a second of training steps, and the held-out cross-entropy per target token.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import tensorflow as tf

from apps.common.optimizer import make_optimizer
from apps.common.plots import Panel, plot_panels
from apps.diagnostics.data import (
    TRANSLATION_VOCAB,
    translation_batches,
    translation_heldout,
)
from apps.diagnostics.fitting import Rewind, initial_weights
from apps.diagnostics.model import encoder_decoder
from apps.diagnostics.report import StudyResult
from pipelines.batching import padding_stats

EVALUATIONS = 8
_BATCH_SPEC = {name: tf.TensorSpec([None, None], tf.int32)
               for name in ("source", "target_in", "target")}


def _token_loss(model, batch, training: bool):
    """(summed cross-entropy of the real target tokens, their number)."""
    logits = model([batch["source"], batch["target_in"]], training=training)
    mask = tf.cast(batch["target"] > 0, tf.float32)
    losses = keras.losses.sparse_categorical_crossentropy(batch["target"], logits,
                                                          from_logits=True)
    return tf.reduce_sum(losses * mask), tf.reduce_sum(mask)


class Trainer:
    """The encoder-decoder and its Adam step, traced once for batches of any shape;
    `train(strategy)` trains it from the seed's initial weights."""

    def __init__(self, config, heldout: tf.data.Dataset):
        self.config, self.heldout = config, heldout

        def build():
            return encoder_decoder("lstm", config.translation_units, TRANSLATION_VOCAB)

        self.initial_weights = initial_weights(build, config.seed)
        model = self.model = build()
        optimizer = make_optimizer(config)
        self.rewind = Rewind(model, optimizer)
        variables = model.trainable_variables

        @tf.function(input_signature=[_BATCH_SPEC])
        def train_step(batch):
            with tf.GradientTape() as tape:
                total, count = _token_loss(model, batch, training=True)
                loss = total / count
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss

        self.train_step = train_step
        self.heldout_step = tf.function(lambda batch: _token_loss(model, batch, training=False),
                                        input_signature=[_BATCH_SPEC])

    def heldout_loss(self) -> float:
        sums = np.array([[float(value) for value in self.heldout_step(batch)]
                         for batch in self.heldout])
        return float(sums[:, 0].sum() / sums[:, 1].sum())

    def train(self, strategy: str) -> tuple[dict, list[tuple[int, float, float]]]:
        """The strategy's row of the table and its curve `(steps, seconds, held-out loss)`."""
        config = self.config
        self.rewind(self.initial_weights)
        steps = config.batching_steps
        evaluate_at = set(np.linspace(0, steps, EVALUATIONS + 1)[1:].round().astype(int).tolist())
        curve, seconds, tokens = [(0, 0.0, self.heldout_loss())], 0.0, 0
        batches = translation_batches(config, strategy, config.seed).repeat().prefetch(2)
        for step, batch in enumerate(batches.take(steps), start=1):
            start = time.perf_counter()
            float(self.train_step(batch))
            if step > 1:  # the very first step traces the function
                seconds += time.perf_counter() - start
                tokens += int(np.count_nonzero(batch["source"]) + np.count_nonzero(batch["target"]))
            if step in evaluate_at:
                curve.append((step, seconds, self.heldout_loss()))
        stats = padding_stats(translation_batches(config, strategy, config.seed),
                              features=["source", "target"])
        row = {
            "strategy": strategy,
            "padded_fraction": stats["padded_fraction"],
            "batches_per_epoch": stats["num_batches"],
            "steps": steps,
            "tokens_per_second": tokens / seconds if seconds > 0 else float("nan"),
            "train_seconds": seconds,
            "valid_loss": curve[-1][2],
        }
        return row, curve


def run(ctx) -> StudyResult:
    config = ctx.config
    trainer = Trainer(config, translation_heldout(config))
    rows, curves = [], {}
    for strategy in config.batching_strategies:
        logging.info("batching: %s", strategy)
        row, curves[strategy] = trainer.train(strategy)
        rows.append(row)
    panels = [
        Panel({name: [loss for _, _, loss in curve] for name, curve in curves.items()},
              "held-out loss against steps", "training steps", "nats per target token",
              x_values={name: [step for step, _, _ in curve] for name, curve in curves.items()}),
        Panel({name: [loss for _, _, loss in curve] for name, curve in curves.items()},
              "held-out loss against training time", "seconds of training steps",
              "nats per target token",
              x_values={name: [second for _, second, _ in curve]
                        for name, curve in curves.items()}),
    ]
    figure = plot_panels(panels, ctx.run_dir.plot_dir / "batching.png",
                         f"Mini-batch strategies (Morishita et al. 2017): reversal translation, "
                         f"{config.translation_batch_size} pairs a batch")
    return StudyResult(
        f"Batching strategies: {config.batching_steps} steps of "
        f"{config.translation_batch_size} pairs, encoder-decoder LSTM "
        f"{config.translation_units} units",
        rows, figure, {"curves": curves})
