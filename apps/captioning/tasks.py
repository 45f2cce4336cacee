"""The captioning app's commands: train, evaluate, predict, export."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import keras
import numpy as np

from apps.captioning.baselines import most_frequent_caption, nearest_neighbour_captions
from apps.captioning.config import CaptioningConfig
from apps.captioning.data import CaptionSplit, caption_examples, load_split, make_batches
from apps.captioning.encoders import build_encoder
from apps.captioning.features import encoder_features
from apps.captioning.inference import Captioner, alignments_of, caption_arrays
from apps.captioning.metrics import BASE_METRICS, coco_scores, java_available
from apps.captioning.model import CaptionModel, build_model
from apps.captioning.pictures import plot_attention, plot_captions
from apps.captioning.ptb_tokenizer import ptb_tokenize
from apps.captioning.text import CaptionText
from apps.common.checkpoints import load_checkpoint
from apps.common.cli import RunContext
from apps.common.export import export_module, load_export
from apps.common.run_dir import RunDir
from apps.common.serving import ServingOptions, serving_options
from apps.common.training import TrainingResult, train_model

logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def cache_dir(run_dir: RunDir) -> Path:
    return run_dir.root / "cache"


def model_inputs(
    config: CaptioningConfig, split: CaptionSplit, run_dir: RunDir, encoder: keras.Model | None,
    kind: str,
) -> tuple[str, np.ndarray, float]:
    """What the model reads for `split`: ("features", the frozen `encoder`'s cached output
    `kind`, seconds spent computing it) with a cache, else ("image", pixels, 0)."""
    if encoder is not None and config.cache_features:
        features, seconds = encoder_features(encoder, kind, split.images, cache_dir(run_dir), split.key)
        return "features", features, seconds
    return "image", split.images, 0.0


def candidates_of(text: CaptionText, token_ids: np.ndarray) -> list[str]:
    return [text.decode(row) for row in token_ids]


def exact_accuracy(candidates: list[str], references: list[list[str]]) -> float:
    """The fraction of images whose caption equals one of its references, compared as the
    metrics tokenise them."""
    hits = sum(ptb_tokenize(c) in {ptb_tokenize(r) for r in refs} for c, refs in zip(candidates, references))
    return hits / max(len(candidates), 1)


class ValidationCIDEr(keras.callbacks.Callback):
    """Adds `val_cider` and `val_bleu_4` (greedy captions of the validation images, COCO
    metrics against all references) to the epoch logs every `every` epochs (the last
    values repeated in between)."""

    def __init__(self, config: CaptioningConfig, text: CaptionText, inputs: np.ndarray, kind: str,
                 references: list[list[str]], every: int = 1):
        super().__init__()
        self.config, self.text, self.inputs, self.kind = config, text, inputs, kind
        self.references = references
        self.every = every
        self.captioner: Captioner | None = None
        self.last: dict[str, float] = {}

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if (epoch + 1) % self.every == 0 or not self.last:
            if self.captioner is None or self.captioner.model is not self.model:
                self.captioner = Captioner(self.model, self.text, "greedy",
                                           max_length=self.config.maximum_decoding_length)
            token_ids, _, seconds = caption_arrays(self.captioner, self.inputs, self.kind)
            candidates = dict(enumerate(candidates_of(self.text, token_ids)))
            scores, _ = coco_scores(candidates, dict(enumerate(self.references)), ("bleu_4", "cider"))
            self.last = {"val_cider": scores["cider"], "val_bleu_4": scores["bleu_4"]}
            logger.info("epoch %d: validation CIDEr-D %.3f, BLEU-4 %.3f (greedy, %d images in %.1f s)",
                        epoch + 1, scores["cider"], scores["bleu_4"], len(self.inputs), seconds)
        logs.update(self.last)


# --------------------------------------------------------------------------- train


def _phase(ctx: RunContext, run_dir: RunDir, **changes) -> RunContext:
    return RunContext(app=ctx.app, config=dataclasses.replace(ctx.config, **changes), run_dir=run_dir, args=ctx.args)


def _fit(ctx: RunContext, text: CaptionText, train_split: CaptionSplit, valid_split: CaptionSplit | None,
         frozen: bool, initial: RunDir | None = None) -> tuple[TrainingResult, float]:
    """One training phase: the encoder frozen (from cached features when allowed) or
    trained; `initial` is a run whose best weights start it. Returns the result and the
    seconds spent computing encoder features."""
    config: CaptioningConfig = ctx.config
    encoder = build_encoder(config.encoder, config.image_size, config.small_cnn_filters,
                            config.encoder_weights) if frozen and initial is None else None
    if frozen and initial is not None:
        encoder = load_model(initial).encoder
    probe = build_model(config, text.size, frozen_encoder=frozen, encoder_weights="none")
    kind = probe.feature_kind
    input_key, train_inputs, seconds = model_inputs(config, train_split, ctx.run_dir, encoder, kind)
    indices, captions = caption_examples(train_split, text, config.max_caption_length)
    train_data = make_batches(indices, captions, train_inputs, input_key, config, training=True)
    valid_data, callbacks = None, []
    if valid_split is not None:
        _, valid_inputs, valid_seconds = model_inputs(config, valid_split, ctx.run_dir, encoder, kind)
        seconds += valid_seconds
        indices, captions = caption_examples(valid_split, text, config.max_caption_length)
        valid_data = make_batches(indices, captions, valid_inputs, input_key, config, training=False)
        if config.cider_every_epochs:
            limit = config.cider_max_images or len(valid_split)
            callbacks.append(ValidationCIDEr(config, text, valid_inputs[:limit],
                                             "features" if input_key == "features" else "pixels",
                                             valid_split.references[:limit], config.cider_every_epochs))

    def build_compiled_model():
        model = build_model(config, text.size, frozen_encoder=frozen,
                            encoder_weights="none" if encoder is not None or initial is not None else None)
        if initial is not None:
            model.set_weights(load_model(initial).get_weights())
        elif encoder is not None:
            model.encoder.set_weights(encoder.get_weights())
        return model

    result = train_model(ctx, build_compiled_model, train_data, valid_data, metric_callbacks=callbacks)
    result.model.save(ctx.run_dir.checkpoint_dir / "final.keras")
    return result, seconds


def train(ctx: RunContext) -> dict:
    config: CaptioningConfig = ctx.config
    train_split = load_split(config, "train", cache_dir(ctx.run_dir))
    valid_split = load_split(config, "valid", cache_dir(ctx.run_dir))
    text = CaptionText.build(config, [c for refs in train_split.references for c in refs], ctx.run_dir.vocab_dir)
    logger.info("caption vocabulary: %s, %d ids", config.tokenizer, text.size)
    frozen = config.encoder_frozen()
    phases = []
    if config.fine_tune_encoder_after:
        first = config.fine_tune_encoder_after
        budget = config.max_train_minutes * first / config.epochs
        phase_one = _phase(ctx, RunDir(ctx.run_dir.root / "frozen_phase"), epochs=first, max_train_minutes=budget)
        phases.append(("frozen", *_fit(phase_one, text, train_split, valid_split, frozen=True)))
        used = phases[0][1].wall_time_s / 60
        phase_two = _phase(ctx, ctx.run_dir, epochs=config.epochs - first, learning_rate=config.fine_tune_learning_rate,
                           max_train_minutes=max(config.max_train_minutes - used, 1e-3) if config.max_train_minutes else 0.0)
        phases.append(("fine_tuned", *_fit(phase_two, text, train_split, valid_split, frozen=False,
                                           initial=phase_one.run_dir)))
    else:
        phases.append(("", *_fit(ctx, text, train_split, valid_split, frozen=frozen)))
    result = phases[-1][1]
    metrics = {
        "train_images": len(train_split),
        "train_captions": sum(len(refs) for refs in train_split.references),
        "vocab_size": text.size,
        **result.metrics(),
        "train_wall_time_s": round(sum(phase[1].wall_time_s for phase in phases), 1),
        "train_cpu_time_s": round(sum(phase[1].cpu_time_s for phase in phases), 1),
        "epochs_trained": sum(phase[1].metrics()["epochs_trained"] for phase in phases),
        "feature_cache_build_s": round(sum(phase[2] for phase in phases), 1),
    }
    for name, phase_result, _ in phases:
        if name:
            metrics[f"{name}_epochs"] = phase_result.metrics()["epochs_trained"]
    history = result.history
    if "val_cider" in history:
        metrics["best_val_cider_greedy"] = max(history["val_cider"])
    ctx.run_dir.write_metrics(metrics)
    if valid_split is not None:
        _evaluate_split(ctx, "valid", load_model(ctx.run_dir), text, record=False)
    return ctx.run_dir.read_metrics()


# --------------------------------------------------------------------------- evaluate


def load_model(run_dir: RunDir) -> CaptionModel:
    import apps.captioning.encoders  # noqa: F401  (registers the layers for deserialisation)
    import apps.captioning.model  # noqa: F401

    return load_checkpoint(run_dir)


def load_text(config: CaptioningConfig, run_dir: RunDir) -> CaptionText:
    text = CaptionText.load(config.tokenizer, run_dir.vocab_dir)
    if text is None:
        raise FileNotFoundError(f"{run_dir.vocab_dir}: no caption vocabulary; run `train` first")
    return text


def _label(beam_width: int) -> str:
    return "greedy" if beam_width == 1 else f"beam{beam_width}"


def _score(candidates: list[str], split: CaptionSplit, java: bool) -> tuple[dict, list[str]]:
    metrics = BASE_METRICS + (("meteor", "spice") if java else ())
    return coco_scores(dict(enumerate(candidates)), dict(enumerate(split.references)), metrics)


def _evaluate_split(ctx: RunContext, split_name: str, model: CaptionModel, text: CaptionText,
                    record: bool = True) -> dict:
    """COCO metrics of greedy and beam captions and of the two baselines, decoding speed,
    the captions as COCO results JSON in RUN_DIR/captions/, and pictures in plots/."""
    config: CaptioningConfig = ctx.config
    split = load_split(config, split_name, cache_dir(ctx.run_dir))
    if split is None:
        raise ValueError(f"no {split_name} data: give --{split_name}-json (with --image-dir)")
    train_split = load_split(config, "train", cache_dir(ctx.run_dir))
    encoder = model.encoder if model.frozen_encoder else None
    input_key, inputs, _ = model_inputs(config, split, ctx.run_dir, encoder, model.feature_kind)
    kind = "features" if input_key == "features" else "pixels"
    metrics: dict = {f"{split_name}_images": len(split)}
    notes: list[str] = []
    output_dir = ctx.run_dir.root / "captions"
    output_dir.mkdir(exist_ok=True)
    results: dict[str, list[str]] = {}
    for beam_width in sorted(set(config.evaluate_beam_widths)):
        label = _label(beam_width)
        captioner = Captioner(model, text, "beam", beam_width, config.length_penalty,
                              max_length=config.maximum_decoding_length)
        caption_arrays(captioner, inputs[:8], kind)  # traces the graph outside the timing
        token_ids, _, seconds = caption_arrays(captioner, inputs, kind)
        results[label] = candidates_of(text, token_ids)
        metrics[f"{split_name}_images_per_s_{label}"] = round(len(split) / seconds, 1)
    # Baselines: the most frequent training caption; the nearest training image's caption.
    vectors = {name: encoder_features(model.encoder, "vector", part.images, cache_dir(ctx.run_dir), part.key)[0]
               for name, part in (("train", train_split), ("query", split))}
    results["most_frequent"] = [most_frequent_caption(train_split.references)] * len(split)
    results["nearest_neighbour"] = nearest_neighbour_captions(vectors["train"], train_split.references, vectors["query"])
    for label, candidates in results.items():
        scores, notes = _score(candidates, split, config.java_metrics)
        for name, value in scores.items():
            metrics[f"{split_name}_{name}_{label}"] = round(value, 4)
        metrics[f"{split_name}_exact_{label}"] = round(exact_accuracy(candidates, split.references), 4)
        (output_dir / f"{split_name}.{label}.json").write_text(json.dumps(
            [{"image_id": image_id, "caption": caption} for image_id, caption in zip(split.image_ids, candidates)],
            indent=0), encoding="utf-8")
    model_labels = [_label(width) for width in sorted(set(config.evaluate_beam_widths))]
    best = max(model_labels, key=lambda label: metrics[f"{split_name}_cider_{label}"])
    retrieval = metrics[f"{split_name}_cider_nearest_neighbour"]
    metrics[f"{split_name}_beats_retrieval"] = metrics[f"{split_name}_cider_{best}"] > retrieval
    metrics[f"{split_name}_beats_most_frequent"] = (
        metrics[f"{split_name}_cider_{best}"] > metrics[f"{split_name}_cider_most_frequent"])
    metrics["metric_notes"] = notes
    metrics["tokenizer_of_metrics"] = "PTBTokenizer (Java)" if java_available() else "ptb_tokenize (Python)"
    _print_table(split_name, metrics, list(results), best)
    _pictures(ctx, model, text, split, inputs, kind, results[model_labels[-1]], split_name)
    if record:
        return ctx.run_dir.write_evaluation(split_name, split.name, metrics)
    return ctx.run_dir.write_metrics(metrics)


def _print_table(split: str, metrics: dict, labels: list[str], best: str) -> None:
    columns = ["bleu_1", "bleu_4", "rouge_l", "cider", "meteor", "exact"]
    print(f"{split}: {metrics[f'{split}_images']} images (CIDEr-D on its 0-10 scale)")
    print("| captions | " + " | ".join(columns) + " | images/s |")
    for label in labels:
        row = [metrics.get(f"{split}_{name}_{label}") for name in columns]
        speed = metrics.get(f"{split}_images_per_s_{label}", "")
        print(f"| {label} | " + " | ".join("" if v is None else f"{v:.4f}" for v in row) + f" | {speed} |")
    verdict = "beats" if metrics[f"{split}_beats_retrieval"] else "does NOT beat"
    print(f"the model ({best}) {verdict} nearest-neighbour retrieval on CIDEr-D "
          f"({metrics[f'{split}_cider_{best}']:.4f} vs {metrics[f'{split}_cider_nearest_neighbour']:.4f})")
    for note in metrics.get("metric_notes", []):
        print(f"note: {note}")


def _pictures(ctx, model: CaptionModel, text: CaptionText, split: CaptionSplit, inputs, kind: str,
              captions: list[str], split_name: str) -> None:
    config: CaptioningConfig = ctx.config
    count = min(config.plot_images, len(split))
    if not count:
        return
    greedy = Captioner(model, text, "greedy", max_length=config.maximum_decoding_length)
    for index in range(count):
        image = np.asarray(split.images[index])
        path = plot_captions(image, captions[index], split.references[index],
                             ctx.run_dir.plot_dir / f"captions_{split_name}_{index}.png")
        logger.info("captions: %s", path)
        if model.decoder != "attention":
            continue
        token_ids, _, _ = caption_arrays(greedy, inputs[index : index + 1], kind)
        length = int(np.sum(token_ids[0] != 0))
        ids = token_ids[0][:length]
        encoded = np.asarray(inputs[index], np.float32) if kind == "features" else np.asarray(model.encode(image[None]))[0]
        alignments = alignments_of(model, encoded, ids)
        grid = tuple(int(size) for size in model.encoder.outputs[0].shape[1:3])
        path = plot_attention(image, text.pieces(ids), alignments, grid,
                              ctx.run_dir.plot_dir / f"attention_{split_name}_{index}.png")
        logger.info("attention: %s", path)


def evaluate(ctx: RunContext) -> dict:
    return _evaluate_split(ctx, ctx.args.split, load_model(ctx.run_dir), load_text(ctx.config, ctx.run_dir))


# --------------------------------------------------------------------------- predict, export


def image_files(paths: list[str]) -> list[Path]:
    """The image files named, and those of the folders named (sorted)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such image file or folder")
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(paths)}")
    return files


def make_captioner(config: CaptioningConfig, run_dir: RunDir, options: ServingOptions | None = None,
                   beam_width: int | None = None) -> Captioner:
    """The run's `Captioner`, with the serving levers `options` (default: none); with
    `beam_width`, a beam search of that width (1: greedy) instead of `config.decoding`."""
    decoding = config.decoding if beam_width is None else "beam"
    width = config.beam_width if beam_width is None else beam_width
    return Captioner(load_model(run_dir), load_text(config, run_dir), decoding, width,
                     config.length_penalty, config.temperature, config.maximum_decoding_length,
                     options=options)


def predict(ctx: RunContext) -> list[str]:
    """Prints `path<TAB>caption` for every image (an empty caption and a message on
    stderr for a file that is not a decodable image)."""
    import tensorflow as tf

    files = image_files(ctx.args.images)
    if ctx.args.export_dir:  # through the serving signature, as TF Serving calls it
        serving = load_export(ctx.args.export_dir).signatures["serving_default"]

        def caption(images):
            return serving(images=images)
    else:
        captioner = make_captioner(ctx.config, ctx.run_dir)  # kept: its tf.function holds it weakly
        caption = captioner.caption
    captions: list[str] = []
    for begin in range(0, len(files), 32):
        batch = files[begin : begin + 32]
        output = caption(tf.constant([path.read_bytes() for path in batch]))
        for path, caption, valid in zip(batch, output["captions"].numpy(), output["valid"].numpy()):
            captions.append(caption.decode("utf-8"))
            if not valid:
                print(f"error: {path}: not a decodable image", file=sys.stderr)
            print(f"{path}\t{captions[-1]}")
    sys.stdout.flush()
    return captions


def export(ctx: RunContext) -> Path:
    """A SavedModel whose `serving_default` takes encoded images `[N]` and returns
    `{"captions": [N] strings, "log_probs": [N], "valid": [N] bool}`, with decoding,
    resizing, the encoder and the search in the graph."""
    captioner = make_captioner(ctx.config, ctx.run_dir, serving_options(ctx.args))
    path = export_module(captioner, ctx.run_dir, {"serving_default": captioner.caption})
    print(f"exported SavedModel: {path}")
    return path
