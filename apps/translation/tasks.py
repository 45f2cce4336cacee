"""The translation app's commands: train, evaluate, translate, export."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import keras
import sacrebleu

from apps.common import ensemble
from apps.common.checkpoints import load_checkpoint, save_checkpoint
from apps.common.cli import RunContext
from apps.common.ensemble import members_of, refuse_ensemble
from apps.common.export import export_module, load_export
from apps.common.plots import plot_heatmap
from apps.common.run_dir import RunDir
from apps.common.serving import ServingOptions, serving_options
from apps.common.training import train_model
from apps.translation.config import TranslationConfig
from apps.translation.data import (
    SOURCE_MODEL,
    TARGET_MODEL,
    Vocabularies,
    build_vocabularies,
    load_vocabularies,
    make_batches,
    read_split_examples,
    tokenize_pairs,
)
from apps.translation.inference import Translator, alignments_of, translate_sentences
from apps.translation.model import build_model
from pipelines.batching import padding_stats
from pipelines.text_files import read_lines
from pipelines.tokenizers import sentencepiece_processor

logger = logging.getLogger(__name__)


def make_translator(
    config: TranslationConfig,
    model,
    vocabularies: Vocabularies,
    beam_width: int | None = None,
    options: ServingOptions | None = None,
) -> Translator:
    """The run's `Translator`, with the serving levers `options` (default: none)."""
    return Translator(
        model,
        vocabularies,
        beam_width=config.beam_width if beam_width is None else beam_width,
        length_penalty=config.length_penalty,
        max_length=config.maximum_decoding_length,
        max_source_length=config.maximum_source_length,
        lowercase=config.lowercase,
        options=options,
    )


# --------------------------------------------------------------------------- BLEU


def bleu(
    hypotheses: Sequence[str], references: Sequence[str], lowercase: bool = False
) -> tuple[float, str]:
    """Corpus BLEU of detokenised hypotheses against one reference each (sacrebleu's
    default 13a tokenisation; case-insensitive with `lowercase`), and sacrebleu's
    signature of the settings."""
    metric = sacrebleu.metrics.BLEU(lowercase=lowercase)
    score = metric.corpus_score(list(hypotheses), [list(references)])
    return float(score.score), str(metric.get_signature())


class ValidationBLEU(keras.callbacks.Callback):
    """Adds `val_bleu` (greedy search on the validation sentences) to the epoch logs,
    every `every` epochs (the last value is repeated in between)."""

    def __init__(
        self,
        config: TranslationConfig,
        vocabularies: Vocabularies,
        sources: Sequence[str],
        references: Sequence[str],
        every: int = 1,
    ):
        super().__init__()
        self.config = config
        self.vocabularies = vocabularies
        self.sources = list(sources)
        self.references = list(references)
        self.every = every
        self.translator: Translator | None = None
        self.last: float | None = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if (epoch + 1) % self.every == 0 or self.last is None:
            if self.translator is None or self.translator.model is not self.model:
                self.translator = make_translator(self.config, self.model, self.vocabularies, 1)
            hypotheses, seconds, _ = translate_sentences(self.translator, self.sources)
            self.last, _ = bleu(hypotheses, self.references, self.config.lowercase)
            logger.info(
                "epoch %d: validation BLEU (greedy) %.2f (%d sentences in %.1f s)",
                epoch + 1, self.last, len(self.sources), seconds,
            )
        logs["val_bleu"] = self.last


# --------------------------------------------------------------------------- train


def train(ctx: RunContext) -> dict:
    refuse_ensemble(ctx.run_dir, "train")
    config: TranslationConfig = ctx.config
    config.check_monitoring()
    train_sources, train_targets = read_split_examples(config, "train")
    valid_sources, valid_targets = read_split_examples(config, "valid")
    initial_run = RunDir(config.init_from_run) if config.init_from_run else None
    if initial_run is not None:
        initial_run.check_app(ctx.app)
    if initial_run is not None:  # continue from another run: same vocabularies, its weights
        for name in (SOURCE_MODEL, TARGET_MODEL):
            if not (ctx.run_dir.vocab_dir / name).exists():
                shutil.copy(initial_run.vocab_dir / name, ctx.run_dir.vocab_dir / name)
    vocabularies = build_vocabularies(config, train_sources, train_targets, ctx.run_dir.vocab_dir)
    train_data = make_batches(tokenize_pairs(train_sources, train_targets, vocabularies), config, True)
    valid_data = None
    if valid_sources:
        valid_data = make_batches(
            tokenize_pairs(valid_sources, valid_targets, vocabularies), config, False
        )
    stats = padding_stats(train_data.map(lambda x, y, w: y), max_batches=200)
    logger.info(
        "training batches (%s, %s, batch_size %d): %.1f %% padding, %.1f examples a batch",
        config.batch_strategy, config.batch_type, config.batch_size,
        100 * stats["padded_fraction"], stats["mean_batch_size"],
    )
    metric_callbacks = []
    if valid_sources and config.bleu_every_epochs > 0:
        limit = config.bleu_max_sentences or len(valid_sources)
        metric_callbacks.append(
            ValidationBLEU(
                config,
                vocabularies,
                valid_sources[:limit],
                valid_targets[:limit],
                every=config.bleu_every_epochs,
            )
        )

    def build_compiled_model():
        model = build_model(config, vocabularies.source_size, vocabularies.target_size)
        if initial_run is not None:
            model.set_weights(load_model(initial_run).get_weights())
            logger.info("initial weights from %s", initial_run.root)
        return model

    result = train_model(
        ctx, build_compiled_model, train_data, valid_data, metric_callbacks=metric_callbacks
    )
    model, history = result
    save_checkpoint(model, ctx.run_dir.checkpoint_dir / "final.keras")
    metrics = {
        "train_examples": len(train_sources),
        "source_vocab_size": vocabularies.source_size,
        "target_vocab_size": vocabularies.target_size,
        **result.metrics(),
        "train_padding_fraction": stats["padded_fraction"],
    }
    if "val_bleu" in history:
        metrics["best_val_bleu_greedy"] = max(history["val_bleu"])
    ctx.run_dir.write_metrics(metrics)
    if valid_sources:
        _evaluate_split(ctx, "valid", load_model(ctx.run_dir), vocabularies, record=False)
    return ctx.run_dir.read_metrics()


# --------------------------------------------------------------------------- evaluate


def load_model(run_dir: RunDir) -> keras.Model:
    import apps.translation.model  # noqa: F401  (registers the model for deserialisation)

    return load_checkpoint(run_dir)


def shared_vocabularies(members: Sequence[Path]) -> Vocabularies:
    """The one pair of SentencePiece models of an ensemble's members; ValueError naming the
    first member whose models differ."""
    vocabularies = load_vocabularies(RunDir(members[0]).vocab_dir)
    for member in members[1:]:
        if load_vocabularies(RunDir(member).vocab_dir) != vocabularies:
            raise ValueError(
                f"ensemble member {member}: its SentencePiece models differ from those of "
                f"{members[0]}; members must share vocabularies (train them on the same data "
                "with the same --vocab-size, --vocabulary and --sentencepiece-model-type)"
            )
    return vocabularies


def load_models(run_dir: RunDir) -> tuple[keras.Model | list[keras.Model], Vocabularies]:
    """The run's model and vocabularies; for an ensemble run (`ensemble` command), its
    members' models, which must share one pair of SentencePiece models."""
    members = members_of(run_dir)
    if members is None:
        return load_model(run_dir), load_vocabularies(run_dir.vocab_dir)
    vocabularies = shared_vocabularies(members)
    return [load_model(RunDir(member)) for member in members], vocabularies


def _beam_widths(config: TranslationConfig) -> list[int]:
    return sorted({1, config.beam_width})


def create_ensemble(ctx: RunContext) -> list[Path]:
    """The `ensemble` command (apps/common/ensemble.py), which also checks that the
    members share their SentencePiece models."""
    members = ensemble.create(ctx)
    shared_vocabularies(members)
    return members


def data_name(config: TranslationConfig, split: str) -> str:
    """What `split` is read from, as evaluation records and output files name it."""
    source = getattr(config, f"{split}_source", "")
    if source:
        return f"{source} -> {getattr(config, f'{split}_target')}"
    return f"TFDS {config.tfds_name}/{getattr(config, f'tfds_{split}_split', split)}"


def _output_stem(config: TranslationConfig, split: str) -> str:
    source = getattr(config, f"{split}_source", "")
    name = Path(source).name.split(".")[0] if source else split
    return split if name == split else f"{split}-{name}"


def _evaluate_split(
    ctx: RunContext,
    split: str,
    model: keras.Model | list[keras.Model],
    vocabularies: Vocabularies,
    record: bool = True,
) -> dict:
    """BLEU and decoding speed with greedy search and the configured beam; writes the
    translations into RUN_DIR/translations/<split>[-<file>].beam<k>.txt and attention
    heatmaps into plots/. With `record`, the figures go into metrics.json's evaluations
    (keyed by split, files and checkpoint), else beside the training figures."""
    config: TranslationConfig = ctx.config
    sources, references = read_split_examples(config, split)
    if not sources:
        raise ValueError(
            f"no {split} data: give --{split}-source/--{split}-target (or --tfds-name)"
        )
    metrics: dict = {}
    output_dir = ctx.run_dir.root / "translations"
    output_dir.mkdir(exist_ok=True)
    for beam_width in _beam_widths(config):
        translator = make_translator(config, model, vocabularies, beam_width)
        translate_sentences(translator, sources[:8])  # traces the graph outside the timing
        hypotheses, seconds, cpu_seconds = translate_sentences(translator, sources)
        score, signature = bleu(hypotheses, references, config.lowercase)
        (output_dir / f"{_output_stem(config, split)}.beam{beam_width}.txt").write_text(
            "".join(line + "\n" for line in hypotheses), encoding="utf-8"
        )
        metrics[f"{split}_bleu_beam{beam_width}"] = round(score, 2)
        metrics[f"{split}_sentences_per_s_beam{beam_width}"] = round(len(sources) / seconds, 1)
        metrics[f"{split}_sentences_per_cpu_s_beam{beam_width}"] = round(len(sources) / cpu_seconds, 1)
        metrics["bleu_signature"] = signature
        print(
            f"{split} BLEU (beam {beam_width}): {score:.2f}  "
            f"[{len(sources) / seconds:.1f} sentences/s]  {signature}"
        )
    metrics["length_penalty"] = config.length_penalty
    metrics["lowercase"] = config.lowercase
    _heatmaps(ctx, translator, sources[: config.heatmap_sentences], vocabularies, split)
    if record:
        checkpoint = "ensemble" if members_of(ctx.run_dir) is not None else None
        return ctx.run_dir.write_evaluation(split, data_name(config, split), metrics, checkpoint)
    return ctx.run_dir.write_metrics(metrics)


def _heatmaps(ctx, translator: Translator, sentences, vocabularies: Vocabularies, split: str):
    source_pieces = sentencepiece_processor(vocabularies.source)
    target_pieces = sentencepiece_processor(vocabularies.target)
    for index, sentence in enumerate(sentences):
        source_ids, target_ids, alignments = alignments_of(translator, sentence)
        path = plot_heatmap(
            alignments[:, : len(source_ids)],
            ctx.run_dir.plot_dir / f"attention_{split}_{index}.png",
            x_labels=[source_pieces.id_to_piece(int(i)) for i in source_ids],
            y_labels=[target_pieces.id_to_piece(int(i)) for i in target_ids],
            title=f"{sentence}\n-> {translator.detokenize(target_ids[None]).numpy()[0].decode()}",
            xlabel="source",
            ylabel="translation",
        )
        logger.info("attention heatmap: %s", path)


def evaluate(ctx: RunContext) -> dict:
    return _evaluate_split(ctx, ctx.args.split, *load_models(ctx.run_dir))


# --------------------------------------------------------------------------- translate, export


def _read_input(path: str) -> list[str]:
    if path and path != "-":
        return [line.strip() for line in read_lines(path, allow_empty=True)]
    return [line.rstrip("\n").strip() for line in sys.stdin]


def translate(ctx: RunContext) -> list[str]:
    """Translates one sentence a line from --input FILE (default stdin) to --output
    (default stdout), with the run's checkpoint or an exported SavedModel."""
    config: TranslationConfig = ctx.config
    sentences = _read_input(ctx.args.input)
    if ctx.args.export_dir:
        translator = load_export(ctx.args.export_dir)
    else:
        translator = make_translator(config, *load_models(ctx.run_dir))
    translations = translate_sentences(translator, sentences)[0] if sentences else []
    text = "".join(line + "\n" for line in translations)
    if ctx.args.output and ctx.args.output != "-":
        Path(ctx.args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return translations


def export(ctx: RunContext) -> Path:
    """A SavedModel whose `serving_default` takes source strings `[N]` and returns
    `{"translations": [N] strings, "scores": [N]}`, with SentencePiece and beam search
    in the graph."""
    config: TranslationConfig = ctx.config
    translator = make_translator(config, *load_models(ctx.run_dir), options=serving_options(ctx.args))
    path = export_module(translator, ctx.run_dir, {"serving_default": translator.translate})
    print(f"exported SavedModel: {path}")
    return path
