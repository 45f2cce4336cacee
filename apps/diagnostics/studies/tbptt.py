"""tbptt: truncated backpropagation through time with windows of k characters
(Williams & Peng 1990; Sutskever 2013), at an equal number of characters seen.

Every window trains the same LSTM language model from the same weights on the same
tagged text, for `tbptt_tokens` characters (so `tbptt_tokens / (batch_size * k)`
steps). The state is carried across window edges in training and in scoring alike: a
short window can still pass the opening key forward, but no gradient teaches the model
to keep it for longer than k steps. The closing keys sit 7 to about 25 characters after
the opening ones, so their held-out loss (against log 26 = 3.26 nats for a guess) shows
which windows learnt to bridge that gap.
"""

from __future__ import annotations

import logging
import math

import keras
import numpy as np

from apps.common.plots import Panel, plot_panels
from apps.diagnostics import char_lm
from apps.diagnostics.data import char_corpus
from apps.diagnostics.report import StudyResult

GUESS_NATS = math.log(26)  # a key letter guessed uniformly


def run(ctx) -> StudyResult:
    config = ctx.config
    corpus = char_corpus(config)
    rows, overall, long_range, seen = [], {}, {}, {}
    for window in config.tbptt_windows:
        steps = max(config.tbptt_tokens // (config.batch_size * window), 1)
        evaluate_at = sorted({0, *np.linspace(0, steps, config.tbptt_evaluations + 1)[1:]
                             .round().astype(int).tolist()})
        logging.info("tbptt: k=%d, %d steps", window, steps)
        keras.utils.set_random_seed(config.seed)
        trainer = char_lm.Trainer(char_lm.build("lstm", config.lm_units, corpus), corpus,
                                  config, config.batch_size, window)
        result = trainer.train(steps, evaluate_at)
        chars, nats, long_nats = result.points[-1]
        rows.append({
            "window_k": window,
            "steps": steps,
            "chars_seen": chars,
            "valid_perplexity": math.exp(nats),
            "valid_nats_per_char": nats,
            "key_nats_per_char": long_nats,
            "chars_per_second": result.chars_per_second,
        })
        label = f"k={window} ({result.chars_per_second:,.0f} chars/s)"
        seen[label] = [point[0] for point in result.points]
        overall[label] = [point[1] for point in result.points]
        long_range[label] = [point[2] for point in result.points]
    panels = [
        Panel(overall, "all held-out characters", "training characters seen", "nats per char",
              x_values=seen),
        Panel(long_range, "keys of closing tags (dashed: a uniform guess)",
              "training characters seen", "nats per key letter", x_values=seen,
              hline=GUESS_NATS),
    ]
    figure = plot_panels(panels, ctx.run_dir.plot_dir / "tbptt.png",
                         f"Truncated BPTT windows at equal characters seen, LSTM "
                         f"{config.lm_units} units, {config.batch_size} streams")
    return StudyResult(
        f"Truncated BPTT: windows k at {config.tbptt_tokens:,} training characters each; "
        f"held-out nats/char (all, and the keys of closing tags: {GUESS_NATS:.2f} is a guess)",
        rows, figure,
        {"curves": {"chars_seen": seen, "valid_nats_per_char": overall,
                    "key_nats_per_char": long_range}})
