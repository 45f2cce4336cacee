"""Every app trains, evaluates and exports under `--mixed-precision mixed_bfloat16`, what
`auto` picks on CPUs with AMX or AVX512-BF16 (and runs emulated, slowly but the same,
elsewhere; the rest of the suite pins `auto` to float32, tests/conftest.py).

The checkpoint keeps the mixed policy; evaluation and the export compute in float32 from
its float32 weights (apps.common.checkpoints), so the export serves float32 outputs.
"""

from __future__ import annotations

import importlib
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from apps.common.checkpoints import checkpoint_path, load_checkpoint
from apps.common.export import load_export
from apps.common.run_dir import RunDir
from benchmarks.reliability.exports import (
    SENTENCES,
    STRINGS,
    lm_calls,
    run_call,
    tagging_calls,
    text_calls,
)
from tests.apps import test_captioning as captioning_tests
from tests.apps import test_language_model as lm_tests
from tests.apps import test_sentiment as sentiment_tests
from tests.apps import test_tagging as tagging_tests
from tests.apps import test_translation as translation_tests

BF16 = ["--mixed-precision", "mixed_bfloat16"]


def _sentiment(folder: Path) -> list[str]:
    data = sentiment_tests.write_data(folder / "data")
    # with language-model pretraining: its (sampled) softmax loss layer too
    return [*sentiment_tests.TINY, "--epochs", "1", "--data-dir", str(data), "--pretrain-epochs", "1",
            "--pretrain-sampled", "20"]  # fmt: skip


def _tagging(folder: Path) -> list[str]:
    train = tagging_tests.write_conll(folder / "train.txt", tagging_tests.make_sentences(48, seed=1))
    dev = tagging_tests.write_conll(folder / "dev.txt", tagging_tests.make_sentences(12, seed=2))
    return ["--task", "ner", "--train-file", str(train), "--dev-file", str(dev), "--epochs", "1", *tagging_tests.TINY]


def _translation(folder: Path) -> list[str]:
    return [*translation_tests.TINY, *translation_tests.data_flags(folder), "--epochs", "1", "--beam-width", "2",
            "--maximum-decoding-length", "8"]  # fmt: skip


def _language_model(folder: Path) -> list[str]:
    text = folder / "rhyme.txt"
    text.write_text(lm_tests.RHYME * 12, encoding="utf-8")
    return ["--text-file", str(text), "--tokenizer", "word", "--units", "16", "--num-layers", "1", "--bptt", "8",
            "--batch-size", "2", "--epochs", "1", "--verbose", "0", "--ngram-order", "0", "--valid-fraction", "0.2",
            "--tie-embeddings", "true", "--embedding-size", "16"]  # fmt: skip


def _captioning(folder: Path) -> list[str]:
    return [*captioning_tests.TINY, "--shapes-max-shapes", "1", "--shapes-train-images", "96",
            "--shapes-valid-images", "16", "--epochs", "1", "--attention-regularization", "1.0",
            "--evaluate-beam-widths", "1", "--plot-images", "0"]  # fmt: skip


APPS = {
    "sentiment": (_sentiment, text_calls("serving_default", "texts"), STRINGS),
    "tagging": (_tagging, tagging_calls, SENTENCES),
    "translation": (_translation, text_calls("serving_default", "sources"), STRINGS),
    "language_model": (_language_model, lm_calls, STRINGS),
    "captioning": (_captioning, None, None),
}


def _saved_policies(path: Path) -> set[str]:
    """The dtype policy names in a `.keras` file's config."""
    found = set()

    def visit(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                found.add(node["config"]["name"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    with zipfile.ZipFile(path) as archive:
        visit(json.loads(archive.read("config.json")))
    return found


def _floats(outputs: dict) -> list[np.ndarray]:
    return [value for value in outputs.values() if value.dtype.kind == "f"]


@pytest.mark.slow
@pytest.mark.parametrize("app", sorted(APPS))
def test_app_trains_evaluates_and_exports_in_mixed_bfloat16(app, tmp_path):
    flags, calls, elements = APPS[app]
    main = importlib.import_module(f"apps.{app}.__main__").main
    importlib.import_module(f"apps.{app}.model")  # registers the app's layers
    run = tmp_path / "run"
    main(["train", "--run-dir", str(run), *flags(tmp_path), *BF16])
    assert json.loads((run / "config.json").read_text())["mixed_precision"] == "mixed_bfloat16"
    assert "mixed_bfloat16" in _saved_policies(checkpoint_path(RunDir(run)))

    model = load_checkpoint(RunDir(run))
    policies = {layer.dtype_policy.name for layer in model._flatten_layers(include_self=True, recursive=True)}
    assert policies == {"float32"}, policies

    metrics = main(["evaluate", "--run-dir", str(run)])
    assert metrics and all(math.isfinite(v) for v in _numbers(metrics)), metrics

    served = load_export(main(["export", "--run-dir", str(run)]))
    if calls is None:  # captioning: images
        import tensorflow as tf

        rng = np.random.default_rng(0)
        images = [tf.io.encode_png(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).numpy() for _ in range(2)]
        outputs = {k: v.numpy() for k, v in served.signatures["serving_default"](images=tf.constant(images)).items()}
    else:
        outputs = {}
        for call in calls(elements[:3]):
            outputs.update({f"{call.signature}/{k}": v for k, v in run_call(served, call).items()})
    floats = _floats(outputs)  # tagging serves tags only
    assert outputs and all(value.dtype == np.float32 and np.all(np.isfinite(value)) for value in floats), outputs


def _numbers(metrics) -> list[float]:
    """Every number in a (nested) metrics record."""
    if isinstance(metrics, dict):
        return [n for value in metrics.values() for n in _numbers(value)]
    if isinstance(metrics, (int, float)) and not isinstance(metrics, bool):
        return [float(metrics)]
    return []
