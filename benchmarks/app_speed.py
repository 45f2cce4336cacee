"""Training speed of every app's README recipe against the same architecture built from
Keras' built-in layers, and the start-up time of every command line.

    python -m benchmarks.app_speed                 # every app; writes benchmarks/results/app_speed.json
    python -m benchmarks.app_speed --apps tagging --examples 2000 --chunks 4    # a quick look

Per app, in one process and on the same examples (the first `--examples` training
examples of the recipe's data, shuffled by its seed):

    suite   the recipe's model (`build_model` of the app) fed by the app's own pipeline
            (length buckets, token budgets)
    keras   its twin from Keras built-ins, trained the way a Keras tutorial would:
            `keras.layers.GRU`/`LSTM` in `keras.layers.Bidirectional` (a tagger's character
            LSTM applied word by word), padded batches of
            32 examples in shuffled order (`padded_batch`), a softmax where the app has a
            CRF (tagging), the decoder GRU followed by `keras.layers.AdditiveAttention` where
            the app feeds the attention back into the decoder cell (translation)

Both train one epoch over the examples, round-robin in `--chunks` chunks (each chunk a
fraction of each model's epoch, the two models in turn), through the compiled train step
of `fit` (`model.train_function`); tokens/s = the real (non-padding) tokens of the
epoch over the seconds of its steps. `<app>_train_ratio_vs_keras` = suite tokens/s over
the twin's. Then each model's validation quality after that epoch (the same metric for
both). Where the time goes: `<model>_pipeline_tokens_per_s` (iterating the input pipeline
alone) and `<model>_step_tokens_per_s` (the train step on one cached batch, repeated).

Start-up: the wall time of `python -m apps.<app> train --help` and of an option error
(`--epochs 0`) in a subprocess, median of `--startup-repeats` (TensorFlow is imported only
when a command runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "app_speed.json"
APPS = ("sentiment", "tagging", "translation", "language_model")
#: Examples of one epoch per app (reviews, sentences, sentence pairs, characters).
EXAMPLES = {"sentiment": 4000, "tagging": 14041, "translation": 12000, "language_model": 400_000}
TUTORIAL_BATCH = 32

logger = logging.getLogger("benchmarks.app_speed")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.app_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--apps", default=",".join(APPS), help="comma-separated apps")
    parser.add_argument("--examples", type=_examples, default={},
                        help="examples of the epoch: N for every app, or APP=N,... (default: EXAMPLES)")
    parser.add_argument("--chunks", type=int, default=6, help="round-robin chunks of each epoch")
    parser.add_argument("--startup-repeats", type=int, default=5, help="runs of each start-up command")
    parser.add_argument("--skip-startup", action="store_true", help="only the training speed")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--conditions", default="", help="what else ran on the machine")
    return parser.parse_args(argv)


def _examples(value: str) -> dict:
    """"N" (every app) or "app=N,app=N" -> {app or "": N}."""
    if "=" not in value:
        return {"": int(value)}
    pairs = [item.split("=", 1) for item in value.split(",")]
    unknown = sorted(app for app, _ in pairs if app not in APPS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown apps {unknown}")
    return {app: int(count) for app, count in pairs}


# --------------------------------------------------------------------------- start-up


def startup_seconds(app: str, repeats: int) -> dict:
    """Median wall seconds of `train --help` and of an option error, each in a fresh
    Python process."""
    commands = {"help": ["train", "--help"], "option_error": ["train", "--epochs", "0"]}
    figures = {}
    for name, arguments in commands.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", f"apps.{app}", *arguments], cwd=REPO,
                           capture_output=True, check=False)  # fmt: skip
            times.append(time.perf_counter() - start)
        figures[f"{app}_startup_{name}_s"] = round(statistics.median(times), 3)
    return figures


# --------------------------------------------------------------------------- the two models


@dataclasses.dataclass
class Contender:
    """A model, its training batches (one epoch), its validation batches, the real tokens
    of a batch, and its quality on validation (name, value)."""

    model: object
    train: object  # tf.data.Dataset of one epoch
    valid: object
    tokens: Callable
    quality: Callable


def _config(app: str, examples: int):
    """The config of the app's README recipe (parsed as the command line parses it)."""
    import importlib

    from apps.common.cli import prepare
    from benchmarks.recipes import recipe

    main = importlib.import_module(f"apps.{app}.__main__")
    config_cls = {"sentiment": "SentimentConfig", "tagging": "TaggingConfig", "translation": "TranslationConfig",
                  "language_model": "LanguageModelConfig"}[app]  # fmt: skip
    config_cls = getattr(importlib.import_module(f"apps.{app}.config"), config_cls)
    _, ctx = prepare(app, config_cls, main.COMMANDS, ["train", *recipe(app)])
    return ctx.config


def _nonzero(tensor) -> int:
    import tensorflow as tf

    return int(tf.math.count_nonzero(tensor))


def sentiment(config, examples: int, folder: Path) -> dict[str, Contender]:
    import keras
    import tensorflow as tf

    from apps.sentiment.data import (
        TextEncoder,
        build_vocabulary,
        load_split,
        make_dataset,
        train_validation_split,
    )
    from apps.sentiment.model import build_compiled_model

    texts, labels = load_split(config, "train")
    (train_texts, train_labels), (val_texts, val_labels) = train_validation_split(
        texts, labels, config.valid_fraction, config.seed)  # fmt: skip
    train_texts, train_labels = train_texts[:examples], train_labels[:examples]
    val_texts, val_labels = val_texts[:1000], val_labels[:1000]
    build_vocabulary(config, train_texts, folder)
    encoder = TextEncoder(config, folder)

    def padded(texts, labels, shuffle):
        data = tf.data.Dataset.from_tensor_slices((list(texts), labels.astype("float32")))
        data = data.batch(512).map(lambda t, y: (encoder.ragged(t), y)).unbatch()
        data = data.map(lambda ids, y: (tf.cast(ids, tf.int32), y)).cache()
        if shuffle:
            data = data.shuffle(len(texts), seed=config.seed)
        return data.padded_batch(TUTORIAL_BATCH).prefetch(tf.data.AUTOTUNE)

    inputs = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(encoder.vocabulary_size, config.embedding_size, mask_zero=True)(inputs)
    hidden = keras.layers.Dropout(config.embedding_dropout, noise_shape=(None, None, 1))(hidden)
    hidden = keras.layers.Bidirectional(keras.layers.GRU(config.units, return_sequences=True))(hidden)
    pooled = keras.layers.Concatenate()([keras.layers.GlobalMaxPooling1D()(hidden),
                                         keras.layers.GlobalAveragePooling1D()(hidden)])  # fmt: skip
    pooled = keras.layers.Dropout(config.output_dropout)(pooled)
    twin = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    twin.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="binary_crossentropy",
                 metrics=["accuracy"])  # fmt: skip

    def quality(model, valid):
        return "validation accuracy", float(model.evaluate(valid, verbose=0, return_dict=True)["accuracy"])

    def tokens(batch):
        return _nonzero(batch[0])

    return {
        "suite": Contender(build_compiled_model(config, encoder.vocabulary_size),
                           make_dataset(train_texts, train_labels, encoder, config, training=True),
                           make_dataset(val_texts, val_labels, encoder, config, training=False), tokens, quality),
        "keras": Contender(twin, padded(train_texts, train_labels, True), padded(val_texts, val_labels, False),
                           tokens, quality),
    }  # fmt: skip


def tagging(config, examples: int, folder: Path) -> dict[str, Contender]:
    import keras
    import numpy as np
    import tensorflow as tf

    from apps.tagging.data import (
        CASINGS,
        Featurizer,
        build_vocabularies,
        load_splits,
        make_dataset,
        tag_ids,
        training_tags,
    )
    from apps.tagging.model import build_model, predict_tag_ids

    splits = load_splits(config)
    train, dev = splits["train"].subset(range(min(examples, len(splits["train"]))), "train"), splits["dev"]
    vocabularies = build_vocabularies(train, config)
    featurizer = Featurizer(vocabularies, config)
    train_ids = tag_ids(training_tags(train, config), vocabularies.tags, "train")
    dev_ids = tag_ids(training_tags(dev, config), vocabularies.tags, "dev")

    def padded(split, ids, shuffle):
        lengths = np.array([len(s) for s in split.tokens], np.int64)
        flat = tf.constant([t for s in split.tokens for t in s], tf.string)
        data = tf.data.Dataset.from_tensor_slices({
            "tokens": tf.RaggedTensor.from_row_lengths(flat, lengths),
            "tags": tf.RaggedTensor.from_row_lengths(np.concatenate(ids).astype(np.int32), lengths)})
        if shuffle:
            data = data.shuffle(len(split), seed=config.seed)

        def features(batch):
            x = featurizer.batch(batch["tokens"])
            tags = batch["tags"].to_tensor(0)
            return x, tags, tf.cast(tf.sequence_mask(batch["tokens"].row_lengths(), tf.shape(tags)[1]), tf.float32)

        return data.batch(TUTORIAL_BATCH).map(features).cache().prefetch(tf.data.AUTOTUNE)

    word_ids = keras.Input((None,), dtype="int32", name="word_ids")
    char_ids = keras.Input((None, None), dtype="int32", name="char_ids")
    inputs = {"char_ids": char_ids, "word_ids": word_ids}
    pieces = [keras.layers.Embedding(len(vocabularies.words) + 2, config.word_embedding_size)(word_ids)]
    if config.casing_embedding_size > 0:
        inputs["case_ids"] = keras.Input((None,), dtype="int32", name="case_ids")
        pieces.append(keras.layers.Embedding(len(CASINGS) + 1, config.casing_embedding_size)(inputs["case_ids"]))
    class PerWord(keras.layers.Layer):
        """`inner` applied to the characters of each word: [B, T, C] -> [B, T, features]
        (`keras.layers.TimeDistributed` cannot take the gradient when T and C are both
        unknown, as in padded batches of any length)."""

        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, char_ids):
            shape = keras.ops.shape(char_ids)
            features = self.inner(keras.ops.reshape(char_ids, (-1, shape[2])))
            return keras.ops.reshape(features, (shape[0], shape[1], features.shape[-1]))

        def compute_output_shape(self, input_shape):
            return (*input_shape[:2], self.inner.output_shape[-1])

    word_chars = keras.Input((None,), dtype="int32")
    char_model = keras.Model(word_chars, keras.layers.Bidirectional(keras.layers.LSTM(config.char_units))(
        keras.layers.Embedding(len(vocabularies.chars) + 2, config.char_embedding_size, mask_zero=True)(word_chars)))
    pieces.append(PerWord(char_model)(char_ids))
    hidden = keras.layers.Dropout(config.dropout)(keras.layers.Concatenate()(pieces))
    for _ in range(config.num_layers):
        hidden = keras.layers.Bidirectional(keras.layers.LSTM(config.units, return_sequences=True))(hidden)
        hidden = keras.layers.Dropout(config.dropout)(hidden)
    outputs = keras.layers.Dense(len(vocabularies.tags), activation="softmax")(hidden)
    twin = keras.Model(dict(sorted(inputs.items())), outputs)
    twin.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="sparse_categorical_crossentropy")

    dev_data = make_dataset(dev.tokens, None, featurizer, config, False)

    def quality(model, _valid):
        predicted = []
        for features in dev_data:  # in order
            ids = tf.argmax(model(features), -1) if model is twin else predict_tag_ids(model, features)
            predicted.extend(np.asarray(ids))
        correct = sum(int(np.sum(row[: len(gold)] == gold)) for row, gold in zip(predicted, dev_ids))
        return "dev token accuracy", correct / sum(len(gold) for gold in dev_ids)

    def tokens(batch):
        return _nonzero(batch[0]["word_ids"])

    return {
        "suite": Contender(build_model(config, vocabularies), make_dataset(train.tokens, train_ids, featurizer, config, True),
                           None, tokens, quality),
        "keras": Contender(twin, padded(train, train_ids, True), None, tokens, quality),
    }  # fmt: skip


def translation(config, examples: int, folder: Path) -> dict[str, Contender]:
    import keras
    import tensorflow as tf

    from apps.translation.data import (
        build_vocabularies,
        make_batches,
        read_split_examples,
        tokenize_pairs,
    )
    from apps.translation.model import build_model
    from pipelines.tokenizers import PAD_ID

    config = dataclasses.replace(config, steps_per_epoch=0)  # one pass, not a repeated stream
    sources, targets = read_split_examples(config, "train")
    sources, targets = sources[:examples], targets[:examples]
    valid_sources, valid_targets = read_split_examples(config, "valid")
    vocabularies = build_vocabularies(config, sources, targets, folder)
    pairs = tokenize_pairs(sources, targets, vocabularies)
    valid_pairs = tokenize_pairs(valid_sources, valid_targets, vocabularies)

    def padded(examples, shuffle):
        data = examples.cache()
        if shuffle:
            data = data.shuffle(len(sources), seed=config.seed)
        data = data.padded_batch(TUTORIAL_BATCH)
        return data.map(lambda b: ({"source": b["source"], "target_in": b["target_in"]}, b["target_out"],
                                   tf.cast(tf.not_equal(b["target_out"], PAD_ID), tf.float32))).prefetch(4)  # fmt: skip

    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    embedded = keras.layers.Embedding(vocabularies.source_size, config.embedding_size, mask_zero=True)(source)
    memory = keras.layers.Bidirectional(keras.layers.GRU(config.encoder_units, return_sequences=True))(embedded)
    memory = keras.layers.Dropout(config.dropout)(memory)
    state = keras.layers.Dense(config.decoder_units, activation="tanh")(keras.layers.GlobalAveragePooling1D()(memory))
    target = keras.layers.Embedding(vocabularies.target_size, config.embedding_size, mask_zero=True)(target_in)
    decoded = keras.layers.GRU(config.decoder_units, return_sequences=True)(target, initial_state=state)
    query = keras.layers.Dense(2 * config.encoder_units)(decoded)
    context = keras.layers.AdditiveAttention()([query, memory])
    features = keras.layers.Concatenate()([decoded, context, target])
    logits = keras.layers.Dense(vocabularies.target_size)(keras.layers.Dropout(config.dropout)(features))
    twin = keras.Model({"source": source, "target_in": target_in}, logits)
    twin.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])  # fmt: skip

    def quality(model, valid):
        return "validation token accuracy", float(model.evaluate(valid, verbose=0, return_dict=True)["accuracy"])

    def tokens(batch):
        return _nonzero(batch[1])

    return {
        "suite": Contender(build_model(config, vocabularies.source_size, vocabularies.target_size),
                           make_batches(pairs, config, True), make_batches(valid_pairs, config, False), tokens,
                           quality),
        "keras": Contender(twin, padded(pairs, True), padded(valid_pairs, False), tokens, quality),
    }  # fmt: skip


def language_model(config, examples: int, folder: Path) -> dict[str, Contender]:
    import keras

    from apps.language_model.data import (
        encode_splits,
        load_texts,
        training_windows,
        validation_windows,
    )
    from apps.language_model.model import build_model, compile_model
    from apps.language_model.tokens import load_or_train

    config = dataclasses.replace(config, max_train_tokens=examples)
    texts = load_texts(config)
    tokenizer = load_or_train(config, texts["train"], folder)
    splits = encode_splits(tokenizer, texts, config.max_train_tokens)
    train, steps = training_windows(config, splits.ids["train"])
    valid = validation_windows(config, splits.ids["valid"]).take(20)
    stateful = config.training_mode == "stateful"
    suite = compile_model(build_model(config, tokenizer.vocab_size, config.batch_size if stateful else None, stateful),
                          config)  # fmt: skip

    inputs = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(tokenizer.vocab_size, config.embedding_dim)(inputs)
    for _ in range(config.num_layers):
        hidden = keras.layers.LSTM(config.units, return_sequences=True)(hidden)
        hidden = keras.layers.Dropout(config.dropout, noise_shape=(None, 1, config.units))(hidden)
    twin = keras.Model(inputs, keras.layers.Dense(tokenizer.vocab_size)(hidden))
    twin.compile(optimizer=keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clip_norm or None),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # fmt: skip

    def quality(model, valid):
        return "validation nats/char", float(model.evaluate(valid, verbose=0, return_dict=True)["loss"])

    def tokens(batch):
        return int(batch[0].shape[0] * batch[0].shape[1])

    epoch = train.take(steps)
    return {"suite": Contender(suite, epoch, valid, tokens, quality),
            "keras": Contender(twin, epoch, valid, tokens, quality)}  # fmt: skip


BENCHES = {"sentiment": sentiment, "tagging": tagging, "translation": translation, "language_model": language_model}


# --------------------------------------------------------------------------- timing


def _epoch_tokens(contender: Contender) -> tuple[int, int, float]:
    """(steps, real tokens, pipeline tokens/s) of one epoch of its batches."""
    steps = tokens = 0
    start = time.perf_counter()
    for batch in contender.train:
        steps += 1
        tokens += contender.tokens(batch)
    return steps, tokens, tokens / (time.perf_counter() - start)


def _step_rate(contender: Contender, repeats: int = 5) -> float:
    """Tokens/s of the train step alone, on the epoch's first batch repeated (cached)."""
    import tensorflow as tf

    batch = next(iter(contender.train))
    cached = tf.data.Dataset.from_tensors(batch).repeat()
    iterator = iter(cached)
    contender.model.train_function(iterator)  # warm
    start = time.perf_counter()
    for _ in range(repeats):
        logs = contender.model.train_function(iterator)
    tf.nest.map_structure(lambda value: value.numpy() if hasattr(value, "numpy") else value, logs)
    return repeats * contender.tokens(batch) / (time.perf_counter() - start)


def race(contenders: dict[str, Contender], chunks: int) -> dict:
    """One epoch of each model, round-robin in `chunks` chunks; per model: steps, tokens,
    seconds of training, pipeline and step rates, quality after the epoch."""
    import numpy as np

    figures = {}
    plans = {}
    for name, contender in contenders.items():
        steps, tokens, pipeline_rate = _epoch_tokens(contender)
        contender.model.make_train_function()
        plans[name] = (steps, np.linspace(0, steps, chunks + 1).astype(int))
        figures[name] = {"steps": steps, "tokens": tokens, "pipeline_tokens_per_s": pipeline_rate, "seconds": 0.0}
        logger.info("%s: %d steps, %d tokens an epoch; pipeline alone %.0f tokens/s", name, steps, tokens,
                    pipeline_rate)  # fmt: skip
    iterators = {name: iter(contender.train) for name, contender in contenders.items()}
    for name, contender in contenders.items():  # compile the step outside the timed epoch
        logger.info("%s: compiling the train step", name)
        contender.model.train_function(iter(contender.train.take(1)))
    names = list(contenders)
    for chunk in range(chunks):
        for name in names[chunk % len(names):] + names[: chunk % len(names)]:
            _, bounds = plans[name]
            model = contenders[name].model
            start = time.perf_counter()
            logs = None
            for _ in range(bounds[chunk + 1] - bounds[chunk]):
                logs = model.train_function(iterators[name])
            if logs is not None:
                float(np.asarray(logs["loss"]))  # wait for the last step
            figures[name]["seconds"] += time.perf_counter() - start
        logger.info("chunk %d/%d: %s", chunk + 1, chunks,
                    ", ".join(f"{n} {figures[n]['seconds']:.0f} s" for n in names))  # fmt: skip
    for name, contender in contenders.items():
        record = figures[name]
        record["tokens_per_s"] = record["tokens"] / record["seconds"]
        record["step_tokens_per_s"] = _step_rate(contender)
        record["quality_name"], record["quality"] = contender.quality(contender.model, contender.valid)
        logger.info("%s: %.0f tokens/s training, %s %.4f", name, record["tokens_per_s"], record["quality_name"],
                    record["quality"])  # fmt: skip
    return figures


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from benchmarks.recipes import DATA_ROOT, recipe

    started = time.perf_counter()
    apps = args.apps.split(",")
    flat, results = {}, {}
    if not args.skip_startup:  # first, before this process imports TensorFlow
        for app in apps:
            flat.update(startup_seconds(app, args.startup_repeats))
            logger.info("%s start-up: --help %.2f s, option error %.2f s", app, flat[f"{app}_startup_help_s"],
                        flat[f"{app}_startup_option_error_s"])  # fmt: skip
    import keras

    load = [os.getloadavg()[0]]
    for app in apps:
        examples = args.examples.get(app) or args.examples.get("") or EXAMPLES[app]
        keras.utils.set_random_seed(1234)
        config = _config(app, examples)
        try:
            with tempfile.TemporaryDirectory() as folder:
                figures = race(BENCHES[app](config, examples, Path(folder)), args.chunks)
        except Exception:  # one app's failure leaves the others measured (the log has why)
            logger.exception("%s: failed", app)
            continue
        load.append(os.getloadavg()[0])
        for model, record in figures.items():
            for key, value in record.items():
                flat[f"{app}_{model}_{key}"] = round(value, 4) if isinstance(value, float) else value
        flat[f"{app}_train_ratio_vs_keras"] = round(figures["suite"]["tokens_per_s"] / figures["keras"]["tokens_per_s"], 3)
        flat[f"{app}_examples"] = examples
        flat[f"{app}_precision"] = config.mixed_precision
        flat[f"{app}_recipe"] = "python -m apps.{} train {}".format(
            app, " ".join(arg.replace(DATA_ROOT, "../shared/data") for arg in recipe(app)))
        results = _write(args, argv, flat, load, started)  # after each app: a later failure keeps it
    return results


def _write(args, argv, flat: dict, load: list, started: float) -> dict:
    """Merges `flat` and the run's record into the results file; returns its contents."""
    from benchmarks import results_file

    command = "python -m benchmarks.app_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    results = results_file.merge_run(Path(args.output), flat, command=command, conditions=args.conditions,
                                     load=load, started=started)  # fmt: skip
    logger.info("wrote %s", args.output)
    return results


if __name__ == "__main__":
    main()
