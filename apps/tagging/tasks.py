"""The tagging app's commands: train, evaluate, predict, export and compare."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from apps.common.checkpoints import checkpoint_path, save_checkpoint
from apps.common.cli import RunContext
from apps.common.config import save_config
from apps.common.ensemble import SUMMED_METRICS, member_config, members_of, refuse_ensemble
from apps.common.export import export_module, load_export
from apps.common.run_dir import RunDir
from apps.common.serving import ServingOptions, serving_options
from apps.common.training import train_model
from apps.tagging.char_lm import load_contextual_strings, train_language_models
from apps.tagging.config import COMPARE_VARIANTS, TaggingConfig
from apps.tagging.data import (
    Featurizer,
    Split,
    Vocabularies,
    build_vocabularies,
    load_split,
    load_splits,
    make_dataset,
    tag_ids,
    training_tags,
)
from apps.tagging.ensemble import EnsembleTaggerModule, tag_sentences
from apps.tagging.export import TaggerModule
from apps.tagging.metrics import TrainingText
from apps.tagging.model import build_model, load_model
from apps.tagging.scoring import ScoreCallback, Scorer, print_scores, score_tags
from pipelines.tag_schemes import convert_tags, normalize_scheme
from pipelines.text_files import read_lines

logger = logging.getLogger(__name__)

CHAR_LM_DIR = "char_lm"  # in the run directory: the character language models


# ----------------------------------------------------------------------------- commands


def _vocabularies(ctx: RunContext, train: Split) -> Vocabularies:
    """The run's vocabularies: built from the training split once, then reused (resume)."""
    try:
        return Vocabularies.load(ctx.run_dir.vocab_dir)
    except FileNotFoundError:
        vocabularies = build_vocabularies(train, ctx.config)
        vocabularies.save(ctx.run_dir.vocab_dir)
        return vocabularies


def _featurizer(run_dir: RunDir, vocabularies: Vocabularies, config: TaggingConfig) -> Featurizer:
    """The run's featurizer, with its character language models when it has them."""
    if config.char_lm_units <= 0:
        return Featurizer(vocabularies, config)
    separator = Featurizer(vocabularies, config).char_vocabulary_size
    return Featurizer(vocabularies, config, load_contextual_strings(run_dir.root / CHAR_LM_DIR, separator))


def _load_trained(run_dir: RunDir) -> keras.Model:
    return load_model(checkpoint_path(run_dir))


def _summary(scores: dict, prefix: str) -> dict:
    """The scalar scores, keys prefixed with `prefix_` (none for an empty prefix)."""
    key = f"{prefix}_" if prefix else ""
    return {f"{key}{k}": v for k, v in scores.items() if isinstance(v, (int, float))}


def fit(ctx: RunContext) -> tuple[keras.Model, dict, dict]:
    """Trains one tagger; returns the best model, its dev scores and the history."""
    config: TaggingConfig = ctx.config
    splits = load_splits(config)
    train, dev = splits["train"], splits["dev"]
    vocabularies = _vocabularies(ctx, train)
    language_models = {}
    if config.char_lm_units > 0:  # trained first (or reused), then frozen
        language_models = train_language_models(
            train.tokens, dev.tokens, Featurizer(vocabularies, config), config, ctx.run_dir.root / CHAR_LM_DIR
        )
    featurizer = _featurizer(ctx.run_dir, vocabularies, config)
    train_data = make_dataset(
        train.tokens, tag_ids(training_tags(train, config), vocabularies.tags, "train"), featurizer, config, True
    )
    dev_data = make_dataset(
        dev.tokens, tag_ids(training_tags(dev, config), vocabularies.tags, "dev"), featurizer, config, False
    )
    scorer = Scorer(dev, featurizer, vocabularies, config, TrainingText(train.tokens))
    result = train_model(
        ctx,
        lambda: build_model(config, vocabularies),
        train_data,
        dev_data,
        metric_callbacks=[ScoreCallback(scorer)],
    )
    model = result.model
    save_checkpoint(model, ctx.run_dir.checkpoint_dir / "final.keras")
    if ctx.run_dir.best_model_path.exists():
        model = _load_trained(ctx.run_dir)
    scores = scorer.score(model)
    run_info = {
        "train_sentences": len(train),
        "train_tokens": train.num_tokens,
        "dev_sentences": len(dev),
        **{key: value for key, value in result.metrics().items() if key != "train_loss"},
        **language_models,
    }
    # The character LMs' training counts as training time.
    for key in ("train_wall_time_s", "train_cpu_time_s"):
        run_info[key] = round(run_info[key] + language_models.get(key.replace("train", "char_lm", 1), 0.0), 1)
    return model, scores, run_info


def train(ctx: RunContext) -> dict:
    refuse_ensemble(ctx.run_dir, "train")
    _, scores, run_info = fit(ctx)
    print_scores(scores, "dev", ctx.config)
    return ctx.run_dir.write_metrics(
        {**_summary(scores, "dev"), "dev_per_type": scores.get("per_type", {}), **run_info}
    )


def command_line(config: TaggingConfig, command: str = "train") -> str:
    """The `python -m apps.tagging` command that sets every non-default option of `config`."""
    defaults = TaggingConfig(task=config.task)
    flags = [f"--task {config.task}"]
    for field in dataclasses.fields(TaggingConfig):
        value = getattr(config, field.name)
        if field.name in ("run_dir", "task") or value == getattr(defaults, field.name):
            continue
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value).lower() if isinstance(value, bool) else str(value)
        flags.append(f"--{field.name.replace('_', '-')} {text}")
    return " ".join([f"python -m apps.tagging {command}", *flags])


def _member_module(run_dir: RunDir, config: TaggingConfig, options: ServingOptions | None = None) -> TaggerModule:
    vocabularies = Vocabularies.load(run_dir.vocab_dir)
    return TaggerModule(
        _featurizer(run_dir, vocabularies, config), _load_trained(run_dir), vocabularies.tags, config.decoding, options
    )


def make_module(
    run_dir: RunDir, config: TaggingConfig, options: ServingOptions | None = None
) -> TaggerModule | EnsembleTaggerModule:
    """The serving module of a run, or of an ensemble run (`ensemble` command), with the
    serving levers `options` (default: none)."""
    members = members_of(run_dir)
    if members is None:
        return _member_module(run_dir, config, options)
    # Members keep their data settings but decode as the ensemble does.
    configs = [dataclasses.replace(member_config(member, TaggingConfig), decoding=config.decoding) for member in members]
    return EnsembleTaggerModule(
        [_member_module(RunDir(path), member, options) for path, member in zip(members, configs)],
        config.decoding,
        options,
    )


def _data_name(config: TaggingConfig, split_name: str) -> str:
    named = config.dev_file if split_name == "dev" else config.test_file
    if named:
        return named
    if config.train_file:
        return f"{config.train_file} (held-out {config.valid_fraction:g})"
    return f"TFDS {config.resolved_tfds_name()}/{split_name}"


def evaluate(ctx: RunContext) -> dict:
    """Scores the best checkpoint on --split valid (the dev split, default) or test (once,
    at the end)."""
    config: TaggingConfig = ctx.config
    split_name = "dev" if ctx.args.split == "valid" else ctx.args.split
    split = load_split(config, split_name)
    training = _training_text(config)
    if members_of(ctx.run_dir) is not None:
        return _evaluate_ensemble(ctx, split, training)
    vocabularies = Vocabularies.load(ctx.run_dir.vocab_dir)
    model = _load_trained(ctx.run_dir)
    scorer = Scorer(split, _featurizer(ctx.run_dir, vocabularies, config), vocabularies, config, training)
    start = time.monotonic()
    scores = scorer.score(model)
    print_scores(scores, split_name, config)
    metrics = {**_summary(scores, split_name), f"{split_name}_per_type": scores.get("per_type", {})}
    if ctx.args.results_file:
        trained = ctx.run_dir.read_metrics()
        keys = ("train_wall_time_s", "train_cpu_time_s", "epochs_trained", "parameters", "train_sentences")
        extra = {k: trained.get(k, trained.get(f"dev_{k}")) for k in keys if k in trained or f"dev_{k}" in trained}
        extra.update({k: v for k, v in trained.items() if k.startswith("char_lm_")})
        write_results(
            ctx.args.results_file,
            ctx.args.results_prefix or f"{config.task}_{split_name}",
            {
                **_summary(scores, ""),
                **{f"f1_{name}": values["f1"] for name, values in scores.get("per_type", {}).items()},
                **extra,
                "eval_wall_time_s": round(time.monotonic() - start, 1),
            },
            command=ctx.args.results_command or command_line(config),
        )
    return ctx.run_dir.write_evaluation(ctx.args.split, _data_name(config, split_name), metrics)


def _training_text(config: TaggingConfig) -> TrainingText | None:
    """What the scores on unseen mentions and words compare against: the training split,
    when its file is still there (evaluate does not need it otherwise)."""
    if config.train_file and not Path(config.train_file).exists():
        logger.warning("%s: not found; the scores on mentions and words unseen in training are skipped",
                       config.train_file)
        return None
    return TrainingText(load_splits(config)["train"].tokens)


def _evaluate_ensemble(ctx: RunContext, split: Split, training: TrainingText | None) -> dict:
    """Scores an ensemble and each of its members on the split (members tag with their
    own data settings; the split is read with the ensemble's)."""
    config: TaggingConfig = ctx.config
    split_name = "dev" if ctx.args.split == "valid" else ctx.args.split
    start = time.monotonic()
    module = make_module(ctx.run_dir, config)
    sentences = [list(sentence) for sentence in split.tokens]
    scores = score_tags(split, tag_sentences(module, sentences, config.eval_batch_size), config, training)
    metric = "f1" if config.entities else "accuracy"
    member_results = [
        score_tags(split, tag_sentences(member, sentences, config.eval_batch_size), config, training)
        for member in module.members
    ]
    member_scores = [result[metric] for result in member_results]
    member_unseen = [result.get(f"unseen_{metric}", float("nan")) for result in member_results]
    print_scores(scores, split_name, config)
    print(f"members' {split_name} {metric}: " + ", ".join(f"{100 * value:.2f}" for value in member_scores))
    print(f"members' unseen {metric}: " + ", ".join(f"{100 * value:.2f}" for value in member_unseen))
    metrics = {
        **_summary(scores, split_name),
        f"{split_name}_per_type": scores.get("per_type", {}),
        f"member_{split_name}_{metric}": member_scores,
        f"member_{split_name}_unseen_{metric}": member_unseen,
    }
    if ctx.args.results_file:
        members = members_of(ctx.run_dir)
        trained = ctx.run_dir.read_metrics()
        write_results(
            ctx.args.results_file,
            ctx.args.results_prefix or f"{config.task}_{split_name}_ensemble",
            {
                **_summary(scores, ""),
                **{f"f1_{name}": values["f1"] for name, values in scores.get("per_type", {}).items()},
                **{k: trained[k] for k in SUMMED_METRICS if k in trained},
                f"member_{metric}": member_scores,
                f"member_unseen_{metric}": member_unseen,
                "members": len(members),
                "member_commands": [command_line(member_config(m, TaggingConfig)) for m in members],
                "eval_wall_time_s": round(time.monotonic() - start, 1),
            },
            command=ctx.args.results_command
            or "python -m apps.tagging ensemble --members " + " ".join(map(str, members)),
        )
    return ctx.run_dir.write_evaluation(
        ctx.args.split, _data_name(config, split_name), metrics, "ensemble"
    )


_TOKEN = re.compile(
    r"(?:[A-Za-z]\.){2,}"  # abbreviations: U.S.
    r"|\w+(?=n't\b)|n't\b|'(?:s|re|ve|ll|d|m)\b"  # clitics, as in the Penn Treebank
    r"|\d+(?:[.,:/]\d+)+"  # numbers: 1,000.5 12:30
    r"|\w+(?:[-’]\w+|'(?!(?:s|re|ve|ll|d|m)\b)\w+)*"  # words: O'Neill, well-known
    r"|[^\w\s]",  # any other character is a token of its own
    re.UNICODE,
)


def tokenize(text: str) -> list[str]:
    """Whitespace and punctuation tokenisation of raw text (Penn-Treebank-like clitics)."""
    return _TOKEN.findall(text)


def format_conll(sentences: list[list[str]], tags: list[list[str]]) -> str:
    """CoNLL format: one `token<TAB>tag` line per token, a blank line after each sentence."""
    blocks = ["\n".join(f"{t}\t{g}" for t, g in zip(tokens, sentence_tags)) for tokens, sentence_tags in zip(sentences, tags)]
    return "".join(block + "\n\n" for block in blocks)


def _read_sentences(args) -> list[list[str]]:
    texts: list[str] = list(args.text or [])
    if args.input_file:
        path = Path(args.input_file)
        if not path.exists():
            raise FileNotFoundError(f"--input-file {path}: no such file")
        texts.extend(read_lines(str(path), skip_blank=True))  # invalid UTF-8: FILE:LINE error
    if not texts and not sys.stdin.isatty():
        texts.extend(line for line in sys.stdin.read().splitlines() if line.strip())
    if not texts:
        raise ValueError("nothing to tag: pass --text 'a sentence', --input-file FILE or text on stdin")
    split = str.split if args.pretokenized else tokenize
    return [tokens for tokens in (split(text) for text in texts) if tokens]


def predict(ctx: RunContext) -> list[list[str]]:
    """Tags raw text (one sentence per line) and prints it in CoNLL format."""
    config: TaggingConfig = ctx.config
    sentences = _read_sentences(ctx.args)
    ragged = tf.ragged.constant(sentences, dtype=tf.string)
    if ctx.args.export_dir:
        tagged = load_export(ctx.args.export_dir).tag(ragged)["tags"]
    else:
        if ctx.run_dir is None:
            raise ValueError("predict needs --run-dir RUN_DIR or --export-dir EXPORT_DIR")
        module = make_module(ctx.run_dir, config)  # held: tf.function methods keep weak references
        tagged = module.tag(ragged)["tags"]
    tags = [[t.decode("utf-8") for t in row] for row in tagged.to_list()]
    if ctx.args.output_scheme and config.entities:
        target = normalize_scheme(ctx.args.output_scheme)
        tags = [convert_tags(row, config.tag_scheme, target) for row in tags]
    sys.stdout.write(format_conll(sentences, tags))
    return tags


def export(ctx: RunContext) -> Path:
    config: TaggingConfig = ctx.config
    module = make_module(ctx.run_dir, config, serving_options(ctx.args))
    with warnings.catch_warnings():
        # Saving also traces Keras's own default signature of the model, whose float
        # placeholder inputs trigger a harmless "structure of inputs" warning.
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        path = export_module(module, ctx.run_dir, module.signatures())
    print(f"exported SavedModel: {path}")
    return path


# ----------------------------------------------------------------------------- compare



def parse_variant(text: str, config: TaggingConfig) -> tuple[str, TaggingConfig]:
    """`NAME=KEY:VALUE,KEY:VALUE` -> (NAME, config with those fields replaced)."""
    name, _, assignments = text.partition("=")
    changes = {}
    fields = {field.name: field for field in dataclasses.fields(TaggingConfig)}
    for assignment in filter(None, assignments.split(",")):
        key, _, value = assignment.partition(":")
        key = key.strip().replace("-", "_")
        if key not in fields:
            raise ValueError(f"variant {name!r}: unknown option {key!r}")
        current = getattr(config, key)
        if isinstance(current, bool):
            changes[key] = value.strip().lower() in ("1", "true", "yes", "on")
        else:
            changes[key] = type(current)(value)
    return name or "default", dataclasses.replace(config, **changes)


def compare(ctx: RunContext) -> list[dict]:
    """Trains each variant (e.g. CRF vs softmax, LSTM vs GRU vs a Greff variant) with the
    same data and budget and prints the dev comparison table."""
    rows = []
    for text in ctx.args.variants or COMPARE_VARIANTS:
        name, config = parse_variant(text, ctx.config)
        logger.info("compare: training %s", name)
        sub = RunContext(app=ctx.app, config=config, run_dir=RunDir.create(ctx.app, ctx.run_dir.root / name), args=ctx.args)
        done = sub.run_dir.read_metrics().get("compare_row")
        if done is not None:  # a rerun of an interrupted comparison: keep finished variants
            logger.info("compare: %s already trained", name)
            rows.append(done)
            continue
        config.run_dir = str(sub.run_dir.root)
        save_config(config, sub.run_dir.config_path)
        keras.utils.set_random_seed(config.seed)
        _, scores, run_info = fit(sub)
        rows.append(
            {
                "variant": name,
                "cell": config.cell,
                "decoder": config.decoder,
                "parameters": run_info["parameters"],
                "dev_f1": scores.get("f1"),
                "dev_accuracy": scores["accuracy"],
                "epochs": run_info["epochs_trained"],
                "wall_time_s": run_info["train_wall_time_s"],
                "cpu_time_s": run_info["train_cpu_time_s"],
            }
        )
        sub.run_dir.write_metrics({"compare_row": rows[-1]})
        print(format_comparison(rows, ctx.config))
    ctx.run_dir.write_metrics({"compare": rows})
    if ctx.args.results_file:
        flat = {
            f"{row['variant'].replace('-', '_')}_{metric}": row[metric]
            for row in rows
            for metric in ("dev_f1", "dev_accuracy", "epochs", "wall_time_s", "cpu_time_s", "parameters")
        }
        variants = " ".join(ctx.args.variants or COMPARE_VARIANTS)
        write_results(
            ctx.args.results_file,
            ctx.args.results_prefix or f"{ctx.config.task}_compare",
            flat,
            command=f"{command_line(ctx.config, 'compare')} --variants {variants}",
        )
    return rows


def format_comparison(rows: list[dict], config: TaggingConfig) -> str:
    metric = "dev F1" if config.entities else "dev accuracy"
    lines = [
        f"| {'variant':<14} | {'parameters':>10} | {metric:>12} | {'epochs':>6} | {'minutes':>7} |",
        f"|{'-' * 16}|{'-' * 12}|{'-' * 14}|{'-' * 8}|{'-' * 9}|",
    ]
    for row in rows:
        value = row["dev_f1"] if config.entities else row["dev_accuracy"]
        lines.append(
            f"| {row['variant']:<14} | {row['parameters']:>10,} | {100 * value:>12.2f} | "
            f"{row['epochs']:>6} | {row['wall_time_s'] / 60:>7.1f} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- results


def write_results(path: str, prefix: str, metrics: dict, command: str) -> dict:
    """Merges flat metrics (keys `<prefix>_<metric>`) into a benchmark results JSON, with
    the command, date and machine of the measurement."""
    path = Path(path)
    results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for name, value in metrics.items():
        results[f"{prefix}_{name}"] = float(value) if isinstance(value, np.floating) else value
    results[f"{prefix}_command"] = command
    results[f"{prefix}_date"] = datetime.date.today().isoformat()
    device = "GPU" if tf.config.list_physical_devices("GPU") else "no GPU"
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores, {device}, TensorFlow {tf.__version__}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return results
