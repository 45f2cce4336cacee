"""The apps' README training recipes, as `benchmarks.serving` and `benchmarks.app_speed`
run them (the data under `RNN_SUITE_DATA`, default /work/shared/data; `--mixed-precision
auto`, the default, as in the READMEs)."""

from __future__ import annotations

import os
import shlex

DATA_ROOT = os.environ.get("RNN_SUITE_DATA", "/work/shared/data")

#: app -> `python -m apps.<app> train` arguments of its README recipe (no --run-dir).
RECIPES = {
    "sentiment": "--data-dir {data}/imdb --cell gru --units 64 --vocab-size 15000 "
    "--embedding-dropout 0.5 --epochs 2",
    "tagging": "--task ner --train-file {data}/conll2003/eng.train --dev-file {data}/conll2003/eng.testa "
    "--epochs 80 --early-stopping-patience 10",
    "translation": "--train-source {data}/multi30k/train.en.gz --train-target {data}/multi30k/train.de.gz "
    "--valid-source {data}/multi30k/val.en.gz --valid-target {data}/multi30k/val.de.gz "
    "--lowercase true --vocab-size 6000 --vocabulary separate --steps-per-epoch 125 "
    "--batch-size 2048 --learning-rate 2e-3 --epochs 200 --seed 1234 --ema-momentum 0.998 "
    "--lr-decay-patience 2 --dropout 0.4",
    "language_model": "--text-file {data}/tinyshakespeare/input.txt --valid-fraction 0.1 "
    "--tokenizer char --epochs 1000 --num-layers 2 --units 512 --embedding-size 64 "
    "--dropout 0.25 --batch-size 32 --bptt 128 --learning-rate 0.002 --clip-norm 1.0 "
    "--steps-per-epoch 200 --lr-decay-patience 1 --ngram-order 0",
    # The Flickr8k sample from scratch (`benchmarks.captioning flickr8k`, Show-Attend-Tell).
    "captioning": "--dataset coco_json --train-json {data}/captions_small/captions_train.json "
    "--valid-json {data}/captions_small/captions_val.json --image-dir {data}/captions_small/images "
    "--image-size 96 --small-cnn-filters 32 --units 256 --embedding-size 128 --attention-units 128 "
    "--dropout 0.5 --min-word-count 3 --batch-size 32 --epochs 200 --learning-rate 0.001 "
    "--maximum-decoding-length 20 --early-stopping-patience 15 --lr-schedule plateau "
    "--lr-decay-patience 2 --lr-decay-start-epoch 10 --min-learning-rate 0.0001",
}


def recipe(app: str, *extra: str) -> list[str]:
    """The train arguments of `app`'s recipe with the data root filled in, then `extra`."""
    return [*shlex.split(RECIPES[app].format(data=DATA_ROOT)), *extra]
