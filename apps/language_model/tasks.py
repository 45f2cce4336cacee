"""The language model's commands: train, evaluate, sample, export."""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import keras
import tensorflow as tf

import layers
from apps.common.checkpoints import load_checkpoint, save_checkpoint
from apps.common.cli import RunContext
from apps.common.export import export_module, load_export
from apps.common.run_dir import RunDir
from apps.common.serving import ServingOptions, serving_options
from apps.common.training import train_model
from apps.language_model.callbacks import PerplexityLogs, StreamStates
from apps.language_model.config import LanguageModelConfig
from apps.language_model.data import (
    encode_splits,
    load_texts,
    training_windows,
    validation_windows,
)
from apps.language_model.evaluation import evaluate_ids
from apps.language_model.generation import TextGenerator, print_stream
from apps.language_model.model import (
    build_model,
    compile_model,
    load_trained,
    set_unigram_bias,
)
from apps.language_model.ngram import NGramModel
from apps.language_model.tokens import TextTokenizer, load_or_train
from pipelines.text_files import read_lines

logger = logging.getLogger(__name__)


def _checkpoint(run_dir: RunDir):
    layers.register_all()
    for name in ("best.keras", "final.keras"):
        path = run_dir.checkpoint_dir / name
        if path.exists():
            return path
    raise FileNotFoundError(f"{run_dir.checkpoint_dir}: no checkpoint; run `train` first")


def _chars(tokenizer: TextTokenizer, splits, name: str) -> int | None:
    # Per token is per character for character tokens.
    return None if tokenizer.kind == "char" else splits.num_chars[name]


def evaluate_splits(model, config, tokenizer, splits, names=("valid", "test")) -> dict:
    """Whole-split metrics of the RNN on the held-out splits `names` that exist, and of
    the n-gram model."""
    results = {}
    for name in names:
        if name in splits.ids:
            results[name] = evaluate_ids(
                model,
                config,
                tokenizer.vocab_size,
                splits.ids[name],
                _chars(tokenizer, splits, name),
            )
            logger.info("%s: %s", name, results[name])
    if config.ngram_order > 0:
        start = time.time()
        ngram = NGramModel(
            config.ngram_order,
            tokenizer.vocab_size,
            config.ngram_smoothing,
            config.ngram_discount,
            config.ngram_add_k,
        ).fit(splits.ids["train"])
        for name in names:
            if name in splits.ids:
                scores = ngram.evaluate(splits.ids[name])
                chars = _chars(tokenizer, splits, name)
                if chars:
                    total = scores["nats_per_token"] * scores["num_targets"]
                    scores["nats_per_char"] = total / chars
                    scores["bits_per_char"] = total / chars / 0.6931471805599453
                results[f"ngram_{name}"] = {"model": ngram.name, **scores}
        logger.info("n-gram baseline (%s) in %.1f s", ngram.name, time.time() - start)
    return results


def format_results(results: dict, tokenizer: TextTokenizer) -> str:
    per_char = tokenizer.kind == "char"
    unit = "nats/char" if per_char else "nats/token"
    lines = [
        f"| {'model':<34} | {'split':<5} | {'perplexity':>10} | {unit:>10} | {'bits/char':>9} |",
        f"|{'-' * 36}|{'-' * 7}|{'-' * 12}|{'-' * 12}|{'-' * 11}|",
    ]
    for key, scores in results.items():
        if not isinstance(scores, dict) or "nats_per_token" not in scores:
            continue
        split = key.replace("ngram_", "")
        model = scores.get("model", "RNN")
        bits = scores["bits_per_token"] if per_char else scores.get("bits_per_char", float("nan"))
        lines.append(
            f"| {model:<34} | {split:<5} | {scores['perplexity']:>10.2f} | "
            f"{scores['nats_per_token']:>10.4f} | {bits:>9.4f} |"
        )
    return "\n".join(lines)


def train(ctx: RunContext) -> dict:
    config: LanguageModelConfig = ctx.config
    config.validate()
    texts = load_texts(config)
    tokenizer = load_or_train(config, texts["train"], ctx.run_dir.vocab_dir)
    splits = encode_splits(tokenizer, texts, config.max_train_tokens)
    vocab_size = tokenizer.vocab_size
    stateful = config.training_mode == "stateful"
    train_data, windows_per_pass = training_windows(config, splits.ids["train"])
    validation_data = validation_windows(config, splits.ids["valid"])
    fit_config = dataclasses.replace(
        config, steps_per_epoch=config.steps_per_epoch or windows_per_pass
    )
    fit_ctx = RunContext(ctx.app, fit_config, ctx.run_dir, ctx.args)

    def build() -> keras.Model:
        model = build_model(config, vocab_size, config.batch_size if stateful else None, stateful)
        set_unigram_bias(model, splits.ids["train"])
        return compile_model(model, config)

    metric_callbacks: list = [StreamStates(windows_per_pass)] if stateful else []
    metric_callbacks.append(PerplexityLogs())
    result = train_model(fit_ctx, build, train_data, validation_data,
                         metric_callbacks=metric_callbacks)
    model, history = result
    save_checkpoint(model, ctx.run_dir.checkpoint_dir / "final.keras")
    best = load_checkpoint(ctx.run_dir)
    results = evaluate_splits(best, config, tokenizer, splits, ("valid",))
    print(format_results(results, tokenizer))
    metrics = {
        **results,
        **result.metrics(),
        "train_seconds": round(result.wall_time_s, 1),
        "vocab_size": vocab_size,
        "train_tokens": int(len(splits.ids["train"])),
        "windows_per_pass": windows_per_pass,
        "history": history,
    }
    return ctx.run_dir.write_metrics(metrics)


def _splits_and_tokenizer(ctx: RunContext):
    tokenizer = TextTokenizer.load(ctx.run_dir.vocab_dir)
    texts = load_texts(ctx.config)
    return tokenizer, encode_splits(tokenizer, texts, ctx.config.max_train_tokens)


def evaluate(ctx: RunContext) -> dict:
    """Whole-split metrics of the best checkpoint (state carried), with the n-gram model."""
    config: LanguageModelConfig = ctx.config
    split = ctx.args.split
    tokenizer, splits = _splits_and_tokenizer(ctx)
    if split not in splits.ids:
        raise ValueError(f"--split {split}: this run's data has no {split} text; give "
                         f"--{split}-file FILE (or --test-fraction with --text-file)")
    results = evaluate_splits(load_checkpoint(ctx.run_dir), config, tokenizer, splits, (split,))
    print(format_results(results, tokenizer))
    return ctx.run_dir.write_evaluation(split, _data_name(config, split), results)


def _data_name(config: LanguageModelConfig, split: str) -> str:
    named = getattr(config, f"{split}_file", "")
    return named or config.text_file or config.train_file or f"TFDS {config.tfds_name}"


def load_generator(
    run_dir: RunDir, config: LanguageModelConfig, options: ServingOptions | None = None
) -> TextGenerator:
    """The run's `TextGenerator`, with the serving levers `options` (default: none)."""
    tokenizer = TextTokenizer.load(run_dir.vocab_dir)
    model = load_trained(_checkpoint(run_dir), config, tokenizer.vocab_size)
    return TextGenerator(model, tokenizer, options)


def sample(ctx: RunContext) -> str:
    """Generates from a prompt, printing each token as it is drawn."""
    args = ctx.args
    prompt = args.prompt.replace("\\n", "\n")
    if args.export_dir:
        result = load_export(args.export_dir).signatures["generate_top_k"](
            prompts=tf.constant([prompt]),
            num_tokens=tf.constant(args.num_tokens),
            temperature=tf.constant(args.temperature, tf.float32),
            top_k=tf.constant(args.top_k),
        )
        text = result["text"].numpy()[0].decode("utf-8")
        print(text)
        return text
    generator = load_generator(ctx.run_dir, ctx.config)
    seed = args.sample_seed if args.sample_seed >= 0 else None
    return print_stream(generator, prompt, args.num_tokens, args.temperature, args.top_k, seed)


def _predict_inputs(args) -> list[str]:
    texts = [text.replace("\\n", "\n") for text in args.texts]
    if args.input_file:
        texts.extend(read_lines(args.input_file, allow_empty=True))
    if not texts:
        raise ValueError("predict: give texts as arguments or --input-file FILE (one a line)")
    return texts


def predict(ctx: RunContext) -> list[dict]:
    """How likely the model finds each text: its log-probability (nats), tokens and
    perplexity per token, from the run's checkpoint or an export's `score` signature."""
    texts = _predict_inputs(ctx.args)
    batch = tf.constant([text.encode("utf-8") for text in texts])
    if ctx.args.export_dir:
        scores = load_export(ctx.args.export_dir).signatures["score"](texts=batch)
    elif ctx.run_dir is not None:
        generator = load_generator(ctx.run_dir, ctx.config)  # named: `score` holds it weakly
        scores = generator.score(batch)
    else:
        raise ValueError("predict: give --run-dir RUN_DIR (made by train) or --export-dir EXPORT")
    rows = []
    for text, nats, count in zip(texts, scores["nats"].numpy(), scores["num_tokens"].numpy()):
        perplexity = math.exp(nats / count) if count > 0 else float("nan")
        rows.append({"text": text, "nats": float(nats), "tokens": int(count),
                     "perplexity": perplexity})
        preview = text.replace("\n", " ")
        preview = preview[:60] + ("..." if len(preview) > 60 else "")
        print(f"{-nats:10.2f} nats  {count:>6} tokens  perplexity {perplexity:9.2f}  {preview}")
    return rows


def export(ctx: RunContext):
    """SavedModel with the signatures of `TextGenerator` (sampling loop in the graph)."""
    generator = load_generator(ctx.run_dir, ctx.config, serving_options(ctx.args))
    path = export_module(generator, ctx.run_dir, generator.signatures())
    print(f"exported SavedModel: {path}")
    return path
