"""Why the tied PTB word model learnt slowly: a controlled comparison on the same windows.

    python -m benchmarks.lm_diagnosis                          # every variant
    python -m benchmarks.lm_diagnosis --variants app_tied_no_bias,keras_untied
    python -m benchmarks.lm_diagnosis --list

Every variant trains a two-layer word model on the same PTB training windows (64
contiguous streams x 35 steps, stateful truncated BPTT, in order) for the same number of
steps, from the same seed, with Adam and global-norm clipping as the app compiles it, and
no dropout (the comparison is about how fast the model learns, not how it generalises).
After every `--validate-every` steps it is scored on the validation windows (64 streams,
state carried from zero). The variants differ in one thing each from `app_tied_bias` (the
app's model as fixed) or from `app_tied_no_bias` (the app's tied model before the fix):

- the sequence layer: the app's `layers.Recurrent` or a plain `keras.layers.LSTM` model
  (Embedding -> LSTM -> LSTM -> Dense, or the tied output, same sizes);
- the output layer: untied Dense with bias, tied without bias (the app before the fix:
  `keras.layers.ReversibleEmbedding(..., reverse=True)` has none), tied with a bias,
  and a bias started at the log unigram frequencies of the training split;
- the initial scale of the (tied) embedding matrix, the learning rate, Adam's epsilon,
  mixed bfloat16 against float32;
- the truncated-BPTT bookkeeping: the state zeroed at every window instead of once a
  pass; the app's stateless mode (shuffled independent windows, each from zero states,
  instead of the 64 streams in order); the per-epoch validation left out (its state
  hand-back must not change training).

Figures go to benchmarks/results/language_model.json as flat keys
`diagnosis_<variant>_{val,train}_perplexity_step<N>` (train: the mean over the steps
since the previous point), `diagnosis_<variant>_seconds_per_step` (training steps only;
the machine is shared, so compare speeds only between variants of one invocation) and the
settings, command, date and conditions under `diagnosis_*`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from apps.language_model.callbacks import StreamStates
from apps.language_model.config import LanguageModelConfig
from apps.language_model.data import encode_splits, training_windows, validation_windows
from apps.language_model.model import (
    OutputBias,
    build_model,
    compile_model,
    set_unigram_bias,
    unigram_log_probabilities,
)
from apps.language_model.tokens import load_or_train
from benchmarks import results_file
from benchmarks.host import machine
from pipelines.text_files import read_text

RESULTS = Path(__file__).resolve().parent / "results" / "language_model.json"
DATA_ROOT = os.environ.get("RNN_SUITE_DATA", "/work/shared/data")
PREFIX = "diagnosis"


@dataclasses.dataclass(frozen=True)
class Variant:
    description: str
    network: str = "app"  # app: layers.Recurrent | keras: keras.layers.LSTM
    output: str = "tied_bias"  # untied | tied_no_bias | tied_bias
    unigram_bias: bool = False  # start the output bias at log unigram frequencies
    embedding_scale: float = 0.0  # > 0: embedding ~ U(-scale, scale); 0: Keras' default (0.05)
    learning_rate: float = 3e-3
    epsilon: float = 1e-7  # Keras' Adam default
    mixed_precision: str = ""
    reset_every_window: bool = False
    training_mode: str = "stateful"  # stateless: shuffled independent windows, zero states
    mid_validation: bool = True


VARIANTS: dict[str, Variant] = {
    "app_tied_no_bias": Variant("the app's tied model before the fix", output="tied_no_bias"),
    "app_tied_bias": Variant("the app's tied model with an output bias (the fix)"),
    "app_untied": Variant("the app's model, untied Dense output with bias", output="untied"),
    "keras_untied": Variant(
        "plain keras.layers.LSTM model, untied Dense output with bias",
        network="keras",
        output="untied",
    ),
    "keras_tied_no_bias": Variant(
        "plain keras.layers.LSTM model, tied output without bias",
        network="keras",
        output="tied_no_bias",
    ),
    "keras_tied_bias": Variant("plain keras.layers.LSTM model, tied output with bias", "keras"),
    "app_tied_bias_unigram": Variant(
        "the fix, bias started at log unigram frequencies", unigram_bias=True
    ),
    "keras_untied_unigram": Variant(
        "plain keras.layers.LSTM model, untied, Dense bias started at log unigram frequencies",
        network="keras",
        output="untied",
        unigram_bias=True,
    ),
    "app_tied_bias_init_0.1": Variant("the fix, embedding ~ U(-0.1, 0.1)", embedding_scale=0.1),
    "app_tied_bias_lr_1e-3": Variant("the fix, Adam learning rate 1e-3", learning_rate=1e-3),
    "app_tied_bias_epsilon_1e-8": Variant("the fix, Adam epsilon 1e-8", epsilon=1e-8),
    "app_tied_bias_bf16": Variant(
        "the fix, mixed_bfloat16 (float32 weights)", mixed_precision="mixed_bfloat16"
    ),
    "app_tied_bias_reset_every_window": Variant(
        "the fix, state zeroed at every window", reset_every_window=True
    ),
    "app_tied_bias_stateless": Variant(
        "the fix, the app's stateless mode: shuffled independent windows from zero states",
        training_mode="stateless",
    ),
    "app_tied_bias_unigram_lr_1e-3": Variant(
        "the fix with the unigram bias, Adam learning rate 1e-3",
        unigram_bias=True,
        learning_rate=1e-3,
    ),
    "app_tied_bias_no_mid_validation": Variant(
        "the fix, validation only after the last step", mid_validation=False
    ),
}


class KerasStreamStates(StreamStates):
    """`StreamStates` for models of `keras.layers.RNN` layers."""

    def _variables(self):
        return [
            variable
            for layer in self.model.layers
            if isinstance(layer, keras.layers.RNN) and layer.stateful
            for variable in layer.states
        ]


class StepTimer(keras.callbacks.Callback):
    """Seconds spent in training batches after the first (which traces the step);
    validation excluded."""

    def __init__(self):
        super().__init__()
        self.seconds, self.steps, self._start = 0.0, -1, 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.steps >= 0:
            self.seconds += time.perf_counter() - self._start
        self.steps += 1


def keras_lstm_model(config: LanguageModelConfig, vocab_size: int, output: str) -> keras.Model:
    """Embedding -> `num_layers` stateful keras.layers.LSTM -> Dense (or the tied output)."""
    tokens = keras.Input(batch_shape=(config.batch_size, None), dtype="int32", name="tokens")
    embedding = keras.layers.ReversibleEmbedding(vocab_size, config.units, name="embedding")
    x = embedding(tokens)
    for index in range(config.num_layers):
        x = keras.layers.LSTM(
            config.units, return_sequences=True, stateful=True, name=f"lstm_{index}"
        )(x)
    if output == "untied":
        logits = keras.layers.Dense(vocab_size, name="softmax")(x)
    else:
        logits = embedding(x, reverse=True)
        if output == "tied_bias":
            logits = OutputBias(name="output_bias")(logits)
    return keras.Model(tokens, logits, name="keras_lstm_language_model")


def _app_model(config: LanguageModelConfig, vocab_size: int, output: str) -> keras.Model:
    model = build_model(config, vocab_size, config.batch_size, stateful=True)
    if output != "tied_no_bias":
        return model
    # The app's tied model as it was before the fix: logits = h E^T, no bias.
    logits = model.get_layer("output_bias").input
    if logits.dtype != "float32":
        logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(logits)
    return keras.Model(model.inputs, logits, name="rnn_language_model_no_bias")


def build_variant(
    variant: Variant, config: LanguageModelConfig, vocab_size: int, train_ids: np.ndarray
) -> keras.Model:
    keras.utils.set_random_seed(config.seed)
    if variant.network == "keras":
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(variant.mixed_precision or "float32")
        try:
            model = keras_lstm_model(config, vocab_size, variant.output)
        finally:
            keras.config.set_dtype_policy(previous)
    else:
        model = _app_model(config, vocab_size, variant.output)
    if variant.embedding_scale > 0:
        embedding = model.get_layer("embedding")
        rng = np.random.default_rng(config.seed)
        shape = embedding.embeddings.shape
        embedding.embeddings.assign(
            rng.uniform(-variant.embedding_scale, variant.embedding_scale, shape).astype("float32")
        )
    if variant.unigram_bias:
        set_unigram_bias(model, train_ids)
    compile_model(model, config)
    model.optimizer.epsilon = variant.epsilon
    return model


def unigram_perplexity(train_ids: np.ndarray, valid_ids: np.ndarray, vocab_size: int) -> float:
    """Perplexity of the validation targets under the add-one unigram model of the
    training split: the level of a model that has learnt word frequencies only."""
    log_probs = unigram_log_probabilities(train_ids, vocab_size)
    return float(math.exp(-log_probs[valid_ids[1:]].astype("float64").mean()))


def run_variant(
    name: str, config: LanguageModelConfig, splits, vocab_size: int, steps: int, every: int
) -> dict:
    variant = VARIANTS[name]
    config = dataclasses.replace(
        config,
        learning_rate=variant.learning_rate,
        mixed_precision=variant.mixed_precision,
        tie_embeddings=variant.output != "untied",
        training_mode=variant.training_mode,
    )
    train_data, windows_per_pass = training_windows(config, splits.ids["train"])
    validation_data = validation_windows(config, splits.ids["valid"])
    model = build_variant(variant, config, vocab_size, splits.ids["train"])
    stateful = variant.training_mode == "stateful"
    states = KerasStreamStates if variant.network == "keras" else StreamStates
    windows = 1 if variant.reset_every_window or not stateful else windows_per_pass
    timer = StepTimer()
    every = every if variant.mid_validation else steps
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=steps // every,
        steps_per_epoch=every,
        callbacks=[states(windows), timer],
        shuffle=False,
        verbose=2,
    ).history
    row = {"description": variant.description, "parameters": int(model.count_params())}
    for index, (train, valid) in enumerate(
        zip(history["cross_entropy"], history["val_cross_entropy"])
    ):
        step = (index + 1) * every
        row[f"train_perplexity_step{step}"] = round(math.exp(train), 2)
        row[f"val_perplexity_step{step}"] = round(math.exp(valid), 2)
    row["seconds_per_step"] = round(timer.seconds / max(timer.steps, 1), 3)
    print(json.dumps({name: row}), flush=True)
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.lm_diagnosis",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    parser.add_argument("--steps", type=int, default=200, help="training steps per variant")
    parser.add_argument("--validate-every", type=int, default=100)
    parser.add_argument("--units", type=int, default=200, help="LSTM units = embedding size")
    parser.add_argument("--data-root", default=DATA_ROOT)
    parser.add_argument("--conditions", default="", help="what else shared the machine")
    args = parser.parse_args(argv)
    if args.list:
        for name, variant in VARIANTS.items():
            print(f"{name}: {variant.description}")
        return {}
    names = [name for name in args.variants.split(",") if name]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; --list prints them")
    if args.steps % args.validate_every:
        parser.error("--steps must be a multiple of --validate-every")
    config = LanguageModelConfig(
        tokenizer="word",
        num_layers=2,
        units=args.units,
        tie_embeddings=True,
        batch_size=64,
        bptt=35,
        learning_rate=3e-3,
        clip_norm=1.0,
    )
    texts = {
        "train": read_text(f"{args.data_root}/ptb/ptb.train.txt.gz"),
        "valid": read_text(f"{args.data_root}/ptb/ptb.valid.txt"),
    }
    with tempfile.TemporaryDirectory() as vocab_dir:
        tokenizer = load_or_train(config, texts["train"], vocab_dir)
    splits = encode_splits(tokenizer, texts)
    vocab_size = tokenizer.vocab_size
    command = "python -m benchmarks.lm_diagnosis " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    settings = {
        f"{PREFIX}_setup": (
            f"PTB, 2 layers of {args.units} units (embedding {args.units}), vocabulary "
            f"{vocab_size}, 64 streams x 35 steps, Adam with global clipnorm 1.0, no dropout, "
            f"seed {config.seed}, {args.steps} steps; validation on the 64-stream windows of "
            "ptb.valid.txt with the state carried from zero"
        ),
        f"{PREFIX}_unigram_valid_perplexity": round(
            unigram_perplexity(splits.ids["train"], splits.ids["valid"], vocab_size), 2
        ),
        f"{PREFIX}_machine": machine(),
    }
    for name in names:
        start = time.time()
        row = run_variant(name, config, splits, vocab_size, args.steps, args.validate_every)
        row.update(
            wall_seconds=round(time.time() - start, 1),
            command=command,
            date=datetime.datetime.now().isoformat(timespec="seconds"),
        )
        if args.conditions:
            row["conditions"] = args.conditions
        with results_file.locked(RESULTS):
            results = results_file.read(RESULTS)
            results.update(settings)
            results.update({f"{PREFIX}_{name}_{key}": value for key, value in row.items()})
            results_file.write(RESULTS, results)
    return results_file.read(RESULTS)


if __name__ == "__main__":
    main()
