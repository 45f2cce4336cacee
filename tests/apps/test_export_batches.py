"""Every app's export serves batches.

The serving signatures of the sentiment, tagging, translation and language-model
SavedModels, and of the sentiment, tagging and translation ensembles, take a batch of 0, 1
or many elements holding empty strings, a 100,000-character string, invalid UTF-8 and
emoji, and give each element exactly what it gives alone. A fresh process with no suite
source on its path loads every export with plain `tf.saved_model.load`; the translation
export translates like `translate --run-dir` with every vocabulary option; the objects of
`load_export` keep their functions alive when used as temporaries.

Each app trains tiny, once, through its command line (module-scoped fixtures).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from apps.common.export import load_export
from apps.translation.config import VOCABULARY_TYPES
from benchmarks.reliability.exports import (
    FRESH_PROCESS_SCRIPT,
    SENTENCES,
    STRINGS,
    Call,
    assert_same,
    codec,
    fresh_environment,
    fresh_process_plan,
    lm_calls,
    run_call,
    tagging_calls,
    tensor,
    text_calls,
)
from tests.apps import test_language_model as lm_tests
from tests.apps import test_sentiment as sentiment_tests
from tests.apps import test_tagging as tagging_tests
from tests.apps import test_translation as translation_tests


@dataclasses.dataclass
class Case:
    """An app's export and the batch calls of its signatures over a list of elements."""

    name: str
    app: str
    run: Path
    export: Path
    elements: list
    calls: Callable[[list], list[Call]]


# ----------------------------------------------------------------------------- tiny runs


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("exports")


def _copy_run(run: Path, copy: Path) -> Path:
    """A second member that is a copy of `run` (an ensemble refuses a run listed twice)."""
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export", "backup", "logs"))
    return copy


@pytest.fixture(scope="module")
def sentiment_runs(root) -> list[Path]:
    """Two tiny sentiment runs with different SentencePiece models, and one with words."""
    from apps.sentiment.__main__ import main

    data = sentiment_tests.write_data(root / "sentiment_data")
    tiny = [*sentiment_tests.TINY, "--epochs", "1", "--data-dir", str(data)]
    runs = []
    for name, flags in (
        ("words", []),
        ("pieces_a", ["--tokenizer", "sentencepiece", "--vocab-size", "60"]),
        ("pieces_b", ["--tokenizer", "sentencepiece", "--vocab-size", "90", "--seed", "5"]),
    ):
        main(["train", "--run-dir", str(root / name), *tiny, *flags])
        runs.append(root / name)
    return runs


@pytest.fixture(scope="module")
def tagging_run(root) -> Path:
    from apps.tagging.__main__ import main

    train = tagging_tests.write_conll(root / "train.txt", tagging_tests.make_sentences(48, seed=1))
    dev = tagging_tests.write_conll(root / "dev.txt", tagging_tests.make_sentences(12, seed=2))
    run = root / "tagging"
    main(["train", "--task", "ner", "--train-file", str(train), "--dev-file", str(dev),
          "--run-dir", str(run), "--epochs", "1", *tagging_tests.TINY])  # fmt: skip
    return run


@pytest.fixture(scope="module")
def translation_runs(root) -> dict[str, Path]:
    """A tiny run of each vocabulary option (joint, separate)."""
    from apps.translation.__main__ import main

    train = translation_tests.write_pairs(root, "pairs", 600, seed=0)
    runs = {}
    for vocabulary in VOCABULARY_TYPES:
        runs[vocabulary] = root / f"translation_{vocabulary}"
        main(["train", "--run-dir", str(runs[vocabulary]), "--epochs", "3", *translation_tests.TINY,
              "--train-source", str(train[0]), "--train-target", str(train[1]), "--vocabulary", vocabulary,
              "--vocab-size", "40" if vocabulary == "joint" else "34", "--beam-width", "2",
              "--maximum-decoding-length", "8", "--monitor", "loss"])  # fmt: skip
    return runs


@pytest.fixture(scope="module")
def lm_runs(root) -> dict[str, Path]:
    """A tiny character and a tiny word language model, trained with --text-file."""
    from apps.language_model.__main__ import main

    text = root / "rhyme.txt"
    text.write_text(lm_tests.RHYME * 12, encoding="utf-8")
    runs = {}
    for kind in ("char", "word"):
        runs[kind] = root / f"lm_{kind}"
        main(["train", "--text-file", str(text), "--run-dir", str(runs[kind]), "--tokenizer", kind,
              "--units", "16", "--num-layers", "1", "--bptt", "8", "--batch-size", "2", "--epochs", "1",
              "--verbose", "0", "--ngram-order", "0", "--valid-fraction", "0.2"])  # fmt: skip
    return runs


def _main(app: str):
    import importlib

    return importlib.import_module(f"apps.{app}.__main__").main


@pytest.fixture(scope="module")
def cases(root, sentiment_runs, tagging_run, translation_runs, lm_runs) -> dict[str, Case]:
    """Every export: one per app and option, and the ensembles."""
    sentiment = text_calls("serving_default", "texts")
    translation = text_calls("serving_default", "sources")
    _main("sentiment")(["ensemble", "--run-dir", str(root / "sentiment_ensemble"),
                        "--members", *map(str, sentiment_runs)])  # fmt: skip
    runs = [("sentiment", "sentiment", sentiment_runs[0], STRINGS, sentiment),
            ("sentiment_ensemble", "sentiment", root / "sentiment_ensemble", STRINGS, sentiment)]
    tagging_members = [tagging_run, _copy_run(tagging_run, root / "tagging_copy")]
    _main("tagging")(["ensemble", "--run-dir", str(root / "tagging_ensemble"),
                      "--members", *map(str, tagging_members)])  # fmt: skip
    runs += [("tagging", "tagging", tagging_run, SENTENCES, tagging_calls),
             ("tagging_ensemble", "tagging", root / "tagging_ensemble", SENTENCES, tagging_calls)]
    for vocabulary, run in translation_runs.items():
        runs.append((f"translation_{vocabulary}", "translation", run, STRINGS, translation))
    separate = translation_runs["separate"]  # the ensemble of the harder case: two models
    members = [separate, _copy_run(separate, root / "translation_copy")]
    _main("translation")(["ensemble", "--run-dir", str(root / "translation_ensemble"),
                          "--members", *map(str, members)])  # fmt: skip
    runs.append(("translation_ensemble", "translation", root / "translation_ensemble", STRINGS, translation))
    for kind, run in lm_runs.items():
        runs.append((f"lm_{kind}", "language_model", run, STRINGS, lm_calls))
    return {
        name: Case(name, app, run, _main(app)(["export", "--run-dir", str(run)]), elements, calls)
        for name, app, run, elements, calls in runs
    }


@pytest.fixture(scope="module")
def loaded(cases) -> dict:
    """Every export, loaded once."""
    return {name: load_export(case.export) for name, case in cases.items()}


# ----------------------------------------------------------------------------- properties


@pytest.mark.slow
def test_every_signature_serves_batches_of_any_size_each_element_as_alone(cases, loaded):
    for case in cases.values():
        served = loaded[case.name]
        elements = case.elements
        singles = zip(*(case.calls([element]) for element in elements))
        for batch, alone_calls in zip(case.calls(elements), singles):
            where = f"{case.name} {batch.signature}"
            together = batch.split(run_call(served, batch))
            assert len(together) == len(elements), where
            for index, alone_call in enumerate(alone_calls):
                (alone,) = alone_call.split(run_call(served, alone_call))
                assert_same(together[index], alone, f"{where} element {index}")
        for empty in case.calls([]):
            outputs = run_call(served, empty)
            assert empty.split(outputs) == [], f"{case.name} {empty.signature}: empty batch"
            assert all(value.shape[:1] == (0,) for value in outputs.values()), case.name


def in_memory_signatures(app: str, run: Path) -> tuple[dict[str, Callable], object]:
    """The signatures of the module that `export` saves, built from the run in memory
    without the serving levers (`ServingOptions.plain()`: no XLA, no grouping by length),
    and the module (its functions hold it weakly)."""
    import importlib

    from apps.common.cli import RunContext
    from apps.common.config import load_config
    from apps.common.run_dir import RunDir
    from apps.common.serving import ServingOptions
    from apps.language_model.config import LanguageModelConfig
    from apps.sentiment.config import SentimentConfig
    from apps.tagging.config import TaggingConfig
    from apps.translation.config import TranslationConfig

    config_cls = {"sentiment": SentimentConfig, "tagging": TaggingConfig,
                  "translation": TranslationConfig, "language_model": LanguageModelConfig}[app]  # fmt: skip
    tasks = importlib.import_module(f"apps.{app}.tasks")
    run_dir = RunDir(run)
    config = load_config(config_cls, run_dir.config_path)
    plain = ServingOptions.plain()
    if app == "sentiment":
        module = tasks.make_server(RunContext(app, config, run_dir, None), plain)
        return {"serving_default": module.serve}, module
    if app == "tagging":
        module = tasks.make_module(run_dir, config, plain)
    elif app == "translation":
        module = tasks.make_translator(config, *tasks.load_models(run_dir), options=plain)
        return {"serving_default": module.translate}, module
    else:
        module = tasks.load_generator(run_dir, config, plain)
    return module.signatures(), module


@pytest.mark.slow
def test_every_export_serves_what_its_run_serves_in_memory(cases, loaded):
    """The reloaded SavedModel, with the serving levers `export` uses by default (XLA
    loops and searches on bucket shapes, rows grouped by length), equals the run's module
    in memory without them, in float32: the same labels, tags, tokens and strings, scores
    to 1e-5 (and an ensemble of members with different SentencePiece models keeps each
    member's model)."""
    for case in cases.values():
        signatures, _module = in_memory_signatures(case.app, case.run)
        for call in case.calls(case.elements):
            values = [tensor(value) for value in call.inputs.values()]  # in signature order
            expected = {key: value.numpy() for key, value in signatures[call.signature](*values).items()}
            assert_same(run_call(loaded[case.name], call), expected, f"{case.name} {call.signature}")


@pytest.mark.slow
def test_a_fresh_process_without_the_suite_loads_every_export(cases, loaded, tmp_path):
    """Plain `tf.saved_model.load` (tensorflow_text imported for the SentencePiece ops),
    its working directory outside the repository and no suite source on its path."""
    plan = [step for case in cases.values()
            for step in fresh_process_plan(str(case.export), case.calls(case.elements))]  # fmt: skip
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS_SCRIPT], cwd=tmp_path,
                            env=fresh_environment(), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = iter(json.loads((tmp_path / "results.json").read_text()))
    for case in cases.values():
        for call in case.calls(case.elements):
            got = {key: codec["decode"](item) for key, item in next(fresh).items()}
            assert_same(got, run_call(loaded[case.name], call), f"{case.name} {call.signature} in a fresh process")


@pytest.mark.slow
def test_load_export_keeps_the_loaded_model_alive_for_its_functions(cases, loaded):
    """`load_export(path).signatures[name](...)`, `load_export(path).tag(...)`: the loaded
    object, a temporary, must live as long as the functions taken from it."""
    import gc

    for name in ("sentiment_ensemble", "tagging", "translation_separate", "lm_word"):
        case = cases[name]
        call = case.calls(case.elements[-1:])[0]
        signature = load_export(case.export).signatures[call.signature]
        gc.collect()
        inputs = {key: tensor(value) for key, value in call.inputs.items()}
        outputs = {key: value.numpy() for key, value in signature(**inputs).items()}
        assert_same(outputs, run_call(loaded[name], call), f"{name} via a temporary")
    tags = load_export(cases["tagging"].export).tag(tf.ragged.constant([["Alice", "met", "Bob"], []]))
    assert [len(row) for row in tags["tags"].to_list()] == [3, 0]
    translate = load_export(cases["translation_ensemble"].export).translate
    gc.collect()
    assert translate(tf.constant(["the cat"]))["translations"].shape == (1,)


@pytest.mark.slow
def test_tagging_predict_with_an_export_prints_its_tags(cases, capsys):
    from apps.tagging.__main__ import main

    capsys.readouterr()
    tags = main(["predict", "--export-dir", str(cases["tagging"].export), "--text", "Peter lives in Paris ."])
    assert len(tags) == 1 and len(tags[0]) == 5
    assert capsys.readouterr().out.startswith("Peter\t")


@pytest.mark.slow
@pytest.mark.parametrize("vocabulary", VOCABULARY_TYPES)
def test_translation_export_translates_like_the_run(cases, translation_runs, vocabulary, tmp_path):
    from apps.translation.__main__ import main
    from apps.translation.inference import translate_sentences

    run = translation_runs[vocabulary]
    sentences = [translation_tests.toy_pairs(1, seed=seed)[0][0] for seed in range(8)]
    sentences += ["", "Zürich 😀 👍🏽 Très", "Alice met Bob in Paris ."]
    source = tmp_path / "input.txt"
    source.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    from_run = main(["translate", "--run-dir", str(run), "--input", str(source), "--output", str(tmp_path / "a")])
    export = cases[f"translation_{vocabulary}"].export
    from_export = main(["translate", "--run-dir", str(run), "--export-dir", str(export),
                        "--input", str(source), "--output", str(tmp_path / "b")])  # fmt: skip
    assert from_export == from_run
    assert translate_sentences(load_export(export), sentences)[0] == from_run
    assert sum(bool(text) for text in from_run) >= 4, from_run  # the tiny model says something
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for flags in ([], ["--export-dir", str(export)]):
        output = tmp_path / "empty.out"
        assert main(["translate", "--run-dir", str(run), "--input", str(empty), "--output", str(output), *flags]) == []
        assert output.read_bytes() == b""


# ----------------------------------------------------------------------------- language model


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["char", "word"])
def test_language_model_export_keeps_prompts_and_refuses_bad_temperatures(cases, loaded, lm_runs, kind):
    served = loaded[f"lm_{kind}"]
    generate = served.signatures["generate"]
    given = ["a", "b", "Zürich", "to be", ""]
    prompts = tf.constant(given)
    none = generate(prompts=prompts, num_tokens=tf.constant(0), temperature=tf.constant(0.0))
    assert [text.decode() for text in none["text"].numpy()] == given
    assert none["continuation"].numpy().tolist() == [b""] * 5
    assert none["token_ids"].shape == (5, 0) and none["log_prob"].numpy().tolist() == [0.0] * 5
    negative = generate(prompts=prompts, num_tokens=tf.constant(-3), temperature=tf.constant(0.0))
    assert negative["text"].numpy().tolist() == none["text"].numpy().tolist()
    some = generate(prompts=prompts, num_tokens=tf.constant(5), temperature=tf.constant(0.0))
    for prompt, text, continuation in zip(given, some["text"].numpy(), some["continuation"].numpy()):
        assert text.decode() == prompt + continuation.decode()
    assert some["token_ids"].shape == (5, 5) and np.all(some["log_prob"].numpy() < 0)
    for temperature in (-1.0, math.nan):
        with pytest.raises(tf.errors.InvalidArgumentError, match="temperature"):
            generate(prompts=prompts, num_tokens=tf.constant(3), temperature=tf.constant(temperature))
    top_1 = served.signatures["generate_top_k"](
        prompts=prompts, num_tokens=tf.constant(5), temperature=tf.constant(1.0), top_k=tf.constant(1)
    )
    assert top_1["text"].numpy().tolist() == some["text"].numpy().tolist()  # greedy, batched
    alone = served.signatures["generate_top_k"](
        prompts=prompts[2:3], num_tokens=tf.constant(5), temperature=tf.constant(0.0), top_k=tf.constant(0)
    )
    assert alone["text"].numpy().tolist() == some["text"].numpy()[2:3].tolist()
    score = served.signatures["score"](texts=tf.constant(["a", "b", "a b"]))
    assert score["nats"].shape == (3,) and score["num_tokens"].numpy().tolist()[:2] == [1, 1]
    # `sample` prints the same text, streamed from the run or in one call of the export.
    from apps.language_model.__main__ import main

    flags = ["--run-dir", str(lm_runs[kind]), "--prompt", "Zürich", "--num-tokens", "5", "--temperature", "0"]
    assert main(["sample", *flags, "--export-dir", str(cases[f"lm_{kind}"].export)]) == some["text"].numpy()[2].decode()
    assert "Zürich" + main(["sample", *flags]) == some["text"].numpy()[2].decode()


@pytest.mark.slow
def test_language_model_trained_on_one_text_scores_a_test_file(lm_runs, tmp_path):
    from apps.language_model.__main__ import main

    test = tmp_path / "test.txt"
    test.write_text("to be, or not to be\n", encoding="utf-8")
    metrics = main(["evaluate", "--run-dir", str(lm_runs["char"]), "--split", "test", "--test-file", str(test)])
    assert metrics["test"]["nats_per_token"] > 0 and metrics["data"] == str(test)
