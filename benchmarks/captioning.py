"""Quality and speed figures of apps/captioning, written to
benchmarks/results/captioning.json (the README's tables read them).

    python -m benchmarks.captioning shapes [--budget-minutes 10]
    python -m benchmarks.captioning flickr8k --decoder attention|show_tell [--budget-minutes 45]
    python -m benchmarks.captioning feature_cache [--steps 20]

shapes: trains on the rendered shapes (seed 0) within the budget, then scores 1,000 test
images of an unseen seed (2): exact-caption accuracy (a caption equal to the image's one
reference, as the COCO metrics tokenise them) and the COCO metrics, greedy and beam.

flickr8k: trains from scratch (no pretrained CNN can be loaded offline) on the Flickr8k
sample in ../shared/data/captions_small (350 train, 113 val images, 5 captions each) within
the budget, then scores the validation images: BLEU-1..4, ROUGE-L, CIDEr-D (METEOR with
Java) with greedy search and beams 3 and 5, against the most-frequent-caption and
nearest-neighbour baselines; decoding speed in images/s.

feature_cache: the seconds a training epoch takes with a frozen encoder's features read
from the cache against running the encoder in every batch (ResNet50 at 160 px, random
weights: the speed, not the quality, is measured), on the Flickr8k sample.

Every section's keys carry its name (`shapes_*`, `flickr8k_<decoder>_*`,
`feature_cache_*`) with its `_command`, `_date`, `_wall_time_s` and `_conditions`; other
sections' keys in the file are kept. The README's tables are rendered from the file by
`python -m benchmarks.summary --write` (declared in benchmarks/tables.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

from benchmarks import results_file
from benchmarks.host import machine
from benchmarks.recipes import DATA_ROOT, recipe

RESULTS = Path(__file__).resolve().parent / "results" / "captioning.json"
DATA = Path(DATA_ROOT) / "captions_small"

SHAPES_FLAGS = [
    "--dataset", "shapes", "--image-size", "48", "--small-cnn-filters", "16", "--units", "256",
    "--embedding-size", "64", "--attention-units", "64", "--dropout", "0",
    "--shapes-train-images", "6000", "--shapes-valid-images", "300", "--epochs", "100",
    "--steps-per-epoch", "100", "--learning-rate", "0.003", "--java-metrics", "false",
    "--lr-schedule", "plateau", "--lr-decay-patience", "0", "--lr-decay-start-epoch", "3",
]  # fmt: skip
SHAPES_FIGURES = ("exact", "bleu_4", "cider", "images_per_s")
FLICKR8K_FIGURES = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider", "meteor", "exact",
                    "images_per_s")


def _flat(prefix: str, record: dict, split: str, figures: tuple[str, ...]) -> dict:
    """`<prefix>_<split>_<figure>_<captions>` for the figures of an evaluation record."""
    out = {}
    for key, value in record.items():
        if not key.startswith(f"{split}_"):
            continue
        rest = key[len(split) + 1 :]
        if any(rest.startswith(f"{figure}_") for figure in figures) or rest.startswith("beats_"):
            out[f"{prefix}_{split}_{rest}"] = value
    return out


def _train_figures(prefix: str, metrics: dict) -> dict:
    keys = ("epochs_trained", "train_wall_time_s", "train_cpu_time_s", "parameters", "vocab_size",
            "best_val_cider_greedy", "train_images", "train_captions")
    return {f"{prefix}_{key}": metrics[key] for key in keys if key in metrics}


def shapes(args) -> dict:
    from apps.captioning.__main__ import main

    run_dir = args.run_dir or "runs/captioning/benchmark_shapes"
    trained = main(["train", "--run-dir", run_dir, *SHAPES_FLAGS,
                    "--max-train-minutes", str(args.budget_minutes), "--verbose", "2",
                    "--evaluate-beam-widths", "1"])
    record = main(["evaluate", "--run-dir", run_dir, "--split", "test", "--shapes-test-images", "1000",
                   "--evaluate-beam-widths", "1,3", "--plot-images", "4"])
    figures = {**_train_figures("shapes", trained), **_flat("shapes", record, "test", SHAPES_FIGURES)}
    best = max(record["test_exact_greedy"], record["test_exact_beam3"])
    figures.update(shapes_exact_accuracy=best, shapes_test_images=record["test_images"],
                   shapes_test_seed=2, shapes_budget_minutes=args.budget_minutes,
                   shapes_run_dir=run_dir)
    return figures


def flickr8k(args) -> dict:
    from apps.captioning.__main__ import main

    prefix = f"flickr8k_{args.decoder}"
    run_dir = args.run_dir or f"runs/captioning/benchmark_{prefix}"
    trained = main(["train", *recipe("captioning", "--run-dir", run_dir, "--decoder", args.decoder),
                    "--max-train-minutes", str(args.budget_minutes), "--verbose", "2",
                    "--java-metrics", "false", "--plot-images", "0", "--evaluate-beam-widths", "1"])
    record = main(["evaluate", "--run-dir", run_dir, "--evaluate-beam-widths", "1,3,5",
                   "--java-metrics", "true", "--plot-images", "4"])
    figures = {**_train_figures(prefix, trained), **_flat(prefix, record, "valid", FLICKR8K_FIGURES)}
    figures.update({f"{prefix}_budget_minutes": args.budget_minutes, f"{prefix}_run_dir": run_dir,
                    f"{prefix}_metric_notes": record.get("metric_notes", []),
                    f"{prefix}_metrics_tokenizer": record.get("tokenizer_of_metrics")})
    return figures


def feature_cache(args) -> dict:
    import numpy as np

    from apps.captioning.config import CaptioningConfig
    from apps.captioning.data import caption_examples, load_split, make_batches
    from apps.captioning.encoders import build_encoder
    from apps.captioning.features import encoder_features
    from apps.captioning.model import build_model
    from apps.captioning.text import CaptionText

    work = Path(args.run_dir or "runs/captioning/benchmark_feature_cache")
    config = CaptioningConfig(
        dataset="coco_json", train_json=str(DATA / "captions_train.json"),
        image_dir=str(DATA / "images"), encoder="ResNet50", encoder_weights="none",
        freeze_encoder="true", image_size=160, batch_size=32, min_word_count=3,
    )
    split = load_split(config, "train", work / "cache")
    text = CaptionText.build(config, [c for refs in split.references for c in refs], work / "vocab")
    encoder = build_encoder(config.encoder, config.image_size, weights="none")
    started = time.perf_counter()
    features, _ = encoder_features(encoder, "grid", split.images, work / "cache", split.key + "-bench")
    build_seconds = time.perf_counter() - started
    indices, captions = caption_examples(split, text, config.max_caption_length)
    steps_per_epoch = int(np.ceil(len(indices) / config.batch_size))
    seconds = {}
    for key, inputs in (("features", features), ("image", split.images)):
        model = build_model(config, text.size, frozen_encoder=True, encoder_weights="none")
        model.encoder.set_weights(encoder.get_weights())
        data = make_batches(indices, captions, inputs, key, config, training=True).repeat()
        model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # traces outside the timing
        started = time.perf_counter()
        model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
        seconds[key] = (time.perf_counter() - started) / args.steps * steps_per_epoch
    return {
        "feature_cache_encoder": "ResNet50 (random weights, frozen), 160 px, attention decoder",
        "feature_cache_train_captions": len(indices),
        "feature_cache_epoch_s_cached": round(seconds["features"], 1),
        "feature_cache_epoch_s_encoder_every_batch": round(seconds["image"], 1),
        "feature_cache_speedup_per_epoch": round(seconds["image"] / seconds["features"], 2),
        "feature_cache_build_s": round(build_seconds, 1),
        "feature_cache_steps_timed": args.steps,
    }


SECTIONS = {"shapes": shapes, "flickr8k": flickr8k, "feature_cache": feature_cache}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.captioning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=sorted(SECTIONS))
    parser.add_argument("--decoder", choices=("attention", "show_tell"), default="attention")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="training budget (default: shapes 10, flickr8k 45)")
    parser.add_argument("--steps", type=int, default=20, help="feature_cache: steps timed each way")
    parser.add_argument("--run-dir", default="")
    parser.add_argument("--conditions", default="", help="what shared the machine")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.budget_minutes is None:
        args.budget_minutes = 10.0 if args.section == "shapes" else 45.0
    started = time.perf_counter()
    figures = SECTIONS[args.section](args)
    name = args.section if args.section != "flickr8k" else f"flickr8k_{args.decoder}"
    command = "python -m benchmarks.captioning " + shlex.join(argv if argv is not None else sys.argv[1:])
    figures.update({
        f"{name}_command": command,
        f"{name}_date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        f"{name}_wall_time_s": round(time.perf_counter() - started, 1),
    })
    if args.conditions:
        figures[f"{name}_conditions"] = args.conditions
    output = Path(args.output)
    with results_file.locked(output):
        results = results_file.read(output)
        results = {key: value for key, value in results.items() if not key.startswith(f"{name}_")}
        results.update(figures)
        results["machine"] = machine()
        results_file.write(output, results)
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
