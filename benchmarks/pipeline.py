"""Input-pipeline benchmark: padding and throughput of the batching modes on real data.

IMDB (``shared/data/imdb/train.jsonl.gz``, 25k reviews, SentencePiece 16k or words):
plain ``padded_batch``, bucketing by length, and token-budget bucketing; and the examples/s
that training a 1-layer 256-unit LSTM consumes, measured on the same machine, so the
pipeline-to-training ratio is a ratio taken in one run.

Multi30k (``shared/data/multi30k``, 29k en-de pairs, joint SentencePiece 8k): plain
``padded_batch``, bucketing, token-budget bucketing and the five strategies of Morishita
et al. (2017).

    python -m benchmarks.pipeline            # writes benchmarks/results/pipeline.json
    python -m benchmarks.pipeline --quick    # a subset, for a smoke run

The results file is flat: a top-level ``machine``, ``note``, ``quick`` and ``wall_s`` (of a
full run), then ``<section>_<figure>`` keys (sections ``imdb`` and ``multi30k``, each with
its ``_command``, ``_date`` and ``_wall_s``); the figures of each batching mode are
``<section>_<figure>_<mode>`` (e.g. ``imdb_padded_fraction_token_budget_bucketing``) and
``<section>_modes`` lists the modes in the order they were measured.

Figures: ``padded_fraction`` = padding slots / all slots of the sequence tensors;
``examples_per_s`` = examples delivered per second when iterating the finished pipeline
(tokenisation cached, i.e. the steady state of training epochs 2+), and
``first_epoch_examples_per_s`` with tokenisation included.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.host import machine, machine_of_nested_host  # noqa: E402
from pipelines import batching, tokenizers  # noqa: E402
from pipelines.text_files import read_classification_examples, read_parallel_examples  # noqa: E402

logger = logging.getLogger("benchmarks.pipeline")
REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("imdb", "multi30k")
NOTE = "timings on a shared machine; compare ratios taken in one run"


def _throughput(make_dataset, epochs: int = 2) -> dict[str, float]:
    """Examples/s of the first epoch (fills the cache) and of the best later epoch."""
    dataset = make_dataset()
    rates, cpu_rates = [], []
    for _ in range(epochs):
        start, cpu_start = time.perf_counter(), time.process_time()
        count = 0
        for element in dataset:
            count += tf.nest.flatten(element)[0].shape[0]
        rates.append(count / (time.perf_counter() - start))
        cpu_rates.append(count / max(time.process_time() - cpu_start, 1e-9))
    later = slice(1, None) if len(rates) > 1 else slice(0, None)
    return {
        "first_epoch_examples_per_s": round(rates[0], 1),
        "examples_per_s": round(max(rates[later]), 1),
        "examples_per_cpu_s": round(max(cpu_rates[later]), 1),
        "examples": count,
    }


def _measure(name, make_dataset, stats_features=None, epochs=2):
    result = {"mode": name}
    result.update(_throughput(make_dataset, epochs))
    stats = batching.padding_stats(make_dataset(), features=stats_features)
    result.update(
        padded_fraction=round(stats["padded_fraction"], 4),
        num_batches=stats["num_batches"],
        mean_batch_size=round(stats["mean_batch_size"], 2),
        max_batch_tokens=stats["max_batch_tokens"],
    )
    logger.info("%s", result)
    return result


# --------------------------------------------------------------------------- IMDB


def _imdb_tokenized(texts, labels, tokenizer_kind, vocab_size, work_dir, seed):
    texts_ds = tf.data.Dataset.from_tensor_slices(tf.constant(texts))
    start = time.perf_counter()
    if tokenizer_kind == "sentencepiece":
        standardized = (
            t.decode("utf-8")
            for batch in texts_ds.batch(1024).map(tokenizers.standardize_text).as_numpy_iterator()
            for t in batch
        )
        proto = tokenizers.train_sentencepiece(
            standardized,
            vocab_size=vocab_size,
            model_type="bpe",
            character_coverage=0.9999,
            max_sentence_length=1 << 16,
            seed=seed,
        )
        tokenizers.save_sentencepiece(proto, work_dir)
        layer = tokenizers.SentencePieceTokenizer(proto, dense=False)

        def encode(batch):
            return layer(tokenizers.standardize_text(batch))
    else:
        vocabulary = tokenizers.build_word_vocabulary(texts_ds, max_tokens=vocab_size - 2)
        tokenizers.save_vocabulary(vocabulary, work_dir, "words.txt")
        layer = tokenizers.WordTokenizer(vocabulary, dense=False)

        def encode(batch):
            return tf.cast(layer(batch), tf.int32)

    train_s = time.perf_counter() - start

    def make_examples():
        dataset = tf.data.Dataset.from_tensor_slices((tf.constant(texts), tf.constant(labels)))
        dataset = (
            dataset.batch(256)
            .map(
                lambda t, y: (tf.cast(encode(t), tf.int32), y), num_parallel_calls=tf.data.AUTOTUNE
            )
            .unbatch()
            .map(lambda ids, y: (ids, y))
        )
        return dataset

    return make_examples, train_s, layer.vocabulary_size


def _lstm_consumption(batches: tf.data.Dataset, vocabulary_size: int, steps: int) -> dict:
    """Examples/s that training a 1-layer 256-unit LSTM classifier consumes."""
    import keras

    model = keras.Sequential(
        [
            keras.layers.Embedding(vocabulary_size, 128, mask_zero=True),
            keras.layers.LSTM(256),
            keras.layers.Dense(1),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    iterator = iter(batches.repeat())
    warmup = [next(iterator) for _ in range(3)]
    for x, y in warmup:
        model.train_on_batch(x, y)
    cached = [next(iterator) for _ in range(steps)]  # fed from memory: the pipeline is not timed
    start, cpu_start = time.perf_counter(), time.process_time()
    count = 0
    for x, y in cached:
        model.train_on_batch(x, y)
        count += int(x.shape[0])
    elapsed = time.perf_counter() - start
    cpu_elapsed = time.process_time() - cpu_start
    tokens = sum(int(x.shape[0] * x.shape[1]) for x, _ in cached)
    return {
        "examples_per_s": round(count / elapsed, 1),
        "examples_per_cpu_s": round(count / cpu_elapsed, 1),
        "padded_tokens_per_s": round(tokens / elapsed, 1),
        "steps": steps,
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
    }


def benchmark_imdb(args) -> dict:
    path = Path(args.data_dir) / "imdb" / "train.jsonl.gz"
    texts, labels, _ = read_classification_examples(str(path))
    if args.quick:
        texts, labels = texts[:3000], labels[:3000]
    labels = [float(label) for label in labels]
    work_dir = Path(args.work_dir) / f"imdb_{args.imdb_tokenizer}"
    make_examples, train_s, vocabulary_size = _imdb_tokenized(
        texts, labels, args.imdb_tokenizer, args.imdb_vocab_size, str(work_dir), args.seed
    )
    tokenized = make_examples().cache()
    lengths = np.array([int(tf.shape(ids)[0]) for ids, _ in tokenized])
    length_fn = lambda e: tf.shape(e[0])[0]  # noqa: E731
    budget = args.imdb_token_budget
    modes = {
        "padded_batch": lambda: batching.finalize(
            batching.batch(tokenized.shuffle(5000, seed=args.seed), args.imdb_batch_size)
        ),
        "bucketing": lambda: batching.finalize(
            batching.bucket_by_length(
                tokenized,
                length_fn=length_fn,
                batch_size=args.imdb_batch_size,
                length_bucket_width=args.length_bucket_width,
                shuffle=True,
                seed=args.seed,
            )
        ),
        "token_budget_bucketing": lambda: batching.finalize(
            batching.bucket_by_length(
                tokenized,
                length_fn=length_fn,
                batch_size=budget,
                batch_type="tokens",
                length_bucket_width=args.length_bucket_width,
                max_length=min(budget, int(lengths.max())),
                shuffle=True,
                seed=args.seed,
            )
        ),
    }
    results = [_measure(name, make, stats_features=None) for name, make in modes.items()]
    first_epoch = _throughput(
        lambda: batching.finalize(
            batching.bucket_by_length(
                make_examples(),
                length_fn=length_fn,
                batch_size=budget,
                batch_type="tokens",
                length_bucket_width=args.length_bucket_width,
                max_length=min(budget, int(lengths.max())),
            )
        ),
        epochs=1,
    )
    training = _lstm_consumption(
        modes["token_budget_bucketing"](), vocabulary_size, args.lstm_steps
    )
    pipeline_rate = results[2]["examples_per_s"]
    return {
        "data": str(path.relative_to(Path(args.data_dir).parent)),
        "examples": len(texts),
        "tokenizer": args.imdb_tokenizer,
        "vocabulary_size": vocabulary_size,
        "tokenizer_training_s": round(train_s, 1),
        "length_tokens": {
            "mean": round(float(lengths.mean()), 1),
            "median": float(np.median(lengths)),
            "max": int(lengths.max()),
        },
        "batch_size_examples": args.imdb_batch_size,
        "token_budget": budget,
        "length_bucket_width": args.length_bucket_width,
        "modes": results,
        "uncached_token_budget_examples_per_s": first_epoch["first_epoch_examples_per_s"],
        "lstm_1x256_training": training,
        "pipeline_over_training_ratio": round(pipeline_rate / training["examples_per_s"], 1),
        "pipeline_over_training_ratio_per_cpu_s": round(
            results[2]["examples_per_cpu_s"] / training["examples_per_cpu_s"], 1
        ),
        "uncached_pipeline_over_training_ratio": round(
            first_epoch["first_epoch_examples_per_s"] / training["examples_per_s"], 1
        ),
    }


# --------------------------------------------------------------------------- Multi30k


def benchmark_multi30k(args) -> dict:
    folder = Path(args.data_dir) / "multi30k"
    sources, targets = read_parallel_examples(
        str(folder / "train.en.gz"), str(folder / "train.de.gz")
    )
    if args.quick:
        sources, targets = sources[:5000], targets[:5000]
    start = time.perf_counter()
    proto = tokenizers.train_sentencepiece(
        iter(sources + targets),
        vocab_size=args.multi30k_vocab_size,
        model_type="bpe",
        seed=args.seed,
    )
    train_s = time.perf_counter() - start
    layer = tokenizers.SentencePieceTokenizer(proto, add_eos=True, dense=False)
    pairs = tf.data.Dataset.from_tensor_slices({"source": sources, "target": targets})
    tokenized = (
        pairs.batch(512)
        .map(lambda b: {"source": layer(b["source"]), "target": layer(b["target"])})
        .unbatch()
        .map(lambda e: {"source": e["source"], "target": e["target"]})
        .cache()
    )
    source_lengths = np.array([int(tf.shape(e["source"])[0]) for e in tokenized])
    batch_size, budget, seed = args.multi30k_batch_size, args.multi30k_token_budget, args.seed
    modes = {
        "padded_batch": lambda: batching.batch(tokenized.shuffle(30000, seed=seed), batch_size),
        "bucketing": lambda: batching.bucket_by_length(
            tokenized, batch_size=batch_size, length_bucket_width=1, shuffle=True, seed=seed
        ),
        "token_budget_bucketing": lambda: batching.bucket_by_length(
            tokenized,
            batch_size=budget,
            batch_type="tokens",
            length_bucket_width=1,
            shuffle=True,
            seed=seed,
        ),
    }
    for strategy in batching.STRATEGIES:
        modes[f"morishita_{strategy}"] = lambda strategy=strategy: batching.morishita_batches(
            tokenized, strategy, batch_size=batch_size, seed=seed
        )
        modes[f"morishita_{strategy}_tokens"] = lambda strategy=strategy: (
            batching.morishita_batches(
                tokenized, strategy, batch_size=budget, batch_type="tokens", seed=seed
            )
        )
    results = [
        _measure(name, lambda make=make: batching.finalize(make())) for name, make in modes.items()
    ]
    return {
        "data": str(folder.relative_to(Path(args.data_dir).parent)),
        "examples": len(sources),
        "tokenizer": f"joint SentencePiece BPE {args.multi30k_vocab_size}",
        "tokenizer_training_s": round(train_s, 1),
        "source_length_mean": round(float(source_lengths.mean()), 1),
        "batch_size_examples": batch_size,
        "token_budget": budget,
        "padding_counted_over": "source and target tensors together",
        "modes": results,
    }


# --------------------------------------------------------------------------- results file


def flatten_section(section: str, figures: dict) -> dict:
    """One section's figures as flat ``<section>_...`` keys: nested dicts join their keys
    (``imdb_length_tokens_mean``); the ``modes`` list becomes ``<section>_modes`` (the
    mode names) and one ``<section>_<figure>_<mode>`` key per figure and mode."""
    flat = {}

    def put(key, value):
        assert key not in flat, f"two figures named {key}"
        flat[key] = value

    for key, value in figures.items():
        if key == "modes":
            names = [mode["mode"] for mode in value]
            put(f"{section}_modes", names)
            for metric in [metric for metric in value[0] if metric != "mode"]:
                for name, mode in zip(names, value):
                    put(f"{section}_{metric}_{name}", mode[metric])
        elif isinstance(value, dict):
            for sub, sub_value in value.items():
                put(f"{section}_{key}_{sub}", sub_value)
        else:
            put(f"{section}_{key}", value)
    return flat


def _from_nested(results: dict) -> dict:
    """The flat layout of a results file written in the old nested one (``host``,
    ``quick``, one dict per section, ``wall_s``, ``wall_s_<section>``); figures unchanged."""
    host = results["host"]
    flat = {
        "machine": machine_of_nested_host(host),
        "note": host.get("note", NOTE),
        "quick": results["quick"],
    }
    if "wall_s" in results:
        flat["wall_s"] = results["wall_s"]
    for section in SECTIONS:
        if section in results:
            flat.update(flatten_section(section, results[section]))
        if f"wall_s_{section}" in results:
            flat[f"{section}_wall_s"] = results[f"wall_s_{section}"]
    return flat


def load_results(path: Path) -> dict:
    """The results file as a flat dict (converted if it is still in the nested layout)."""
    if not path.exists():
        return {}
    results = json.loads(path.read_text())
    return _from_nested(results) if "host" in results else results


def _ordered(results: dict) -> dict:
    """Top-level keys first, then each section's keys, in their own order."""
    sections = [{k: v for k, v in results.items() if k.startswith(f"{s}_")} for s in SECTIONS]
    top = {k: v for k, v in results.items() if not any(k in keys for keys in sections)}
    return {k: v for part in (top, *sections) for k, v in part.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--work-dir", default="/tmp/pipeline_benchmark")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "pipeline.json"))
    parser.add_argument(
        "--imdb-tokenizer", choices=("sentencepiece", "words"), default="sentencepiece"
    )
    parser.add_argument("--imdb-vocab-size", type=int, default=16000)
    parser.add_argument("--imdb-batch-size", type=int, default=32)
    parser.add_argument("--imdb-token-budget", type=int, default=8192)
    parser.add_argument("--length-bucket-width", type=int, default=8)
    parser.add_argument("--multi30k-vocab-size", type=int, default=8000)
    parser.add_argument("--multi30k-batch-size", type=int, default=64)
    parser.add_argument("--multi30k-token-budget", type=int, default=2048)
    parser.add_argument("--lstm-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="subsets, for a smoke run")
    parser.add_argument(
        "--only",
        choices=("imdb", "multi30k"),
        default=None,
        help="run one part and update its section of an existing output file",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    tf.random.set_seed(args.seed)
    output = Path(args.output)
    results = load_results(output) if args.only else {}
    results |= {"machine": machine(), "note": NOTE, "quick": args.quick}
    command = shlex.join(
        ["python", "-m", "benchmarks.pipeline", *(sys.argv[1:] if argv is None else argv)]
    )
    start = time.perf_counter()
    for section, benchmark in (("imdb", benchmark_imdb), ("multi30k", benchmark_multi30k)):
        if args.only not in (None, section):
            continue
        section_start = time.perf_counter()
        figures = flatten_section(section, benchmark(args))
        results = {k: v for k, v in results.items() if not k.startswith(f"{section}_")}
        results |= figures | {
            f"{section}_wall_s": round(time.perf_counter() - section_start, 1),
            f"{section}_command": command,
            f"{section}_date": datetime.datetime.now().isoformat(timespec="seconds"),
        }
    if args.only is None:
        results["wall_s"] = round(time.perf_counter() - start, 1)
    results = _ordered(results)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
