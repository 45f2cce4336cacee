"""benchmarks/results_file and the merges of the benchmarks that share a results file."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from benchmarks import language_model, results_file, translation


def test_a_key_belongs_to_the_longest_name_prefixing_it():
    names = ["ptb_lstm", "ptb_lstm_light_dropout", "teacher"]
    assert results_file.owner("ptb_lstm_valid_perplexity", names) == "ptb_lstm"
    assert results_file.owner("ptb_lstm_light_dropout_valid_perplexity", names) == (
        "ptb_lstm_light_dropout"
    )
    assert results_file.owner("teacher_forcing_bleu", names) == "teacher"
    assert results_file.owner("teacher_forcing_bleu", [*names, "teacher_forcing"]) == (
        "teacher_forcing"
    )
    assert results_file.owner("machine", names) is None
    assert results_file.owner("ptb_lstm", names) is None  # a name alone is no figure


def test_write_read_round_trip_under_the_lock(tmp_path):
    path = tmp_path / "results" / "x.json"
    assert results_file.read(path) == {}
    with results_file.locked(path):
        results_file.write(path, {"a_figure": 1.5, "machine": "m"})
    assert results_file.read(path) == {"a_figure": 1.5, "machine": "m"}
    assert json.loads(path.read_text()) == {"a_figure": 1.5, "machine": "m"}


def test_translation_merge_replaces_only_the_named_runs():
    previous = {
        "teacher_forcing_run_dir": "a",
        "teacher_forcing_bleu": 21.7,
        "teacher_run_dir": "b",
        "teacher_bleu": 1.0,
        "machine": "m",
    }
    merged = translation.merge(previous, ["teacher"], {"teacher_run_dir": "c", "teacher_bleu": 2.0})
    assert merged == {
        "teacher_forcing_run_dir": "a",
        "teacher_forcing_bleu": 21.7,
        "machine": "m",
        "teacher_run_dir": "c",
        "teacher_bleu": 2.0,
    }


def test_language_model_row_replaced_in_place_and_prefixes_kept_apart():
    results = {
        "machine": "m",
        "ptb_lstm_valid_perplexity": 123.3,
        "ptb_lstm_light_dropout_valid_perplexity": 115.0,
        "shakespeare_lstm_valid_nats_per_token": 1.44,
    }
    updated = language_model._with_row(results, "ptb_lstm", {"valid_perplexity": 120.0})
    assert list(updated) == list(results)
    assert updated["ptb_lstm_valid_perplexity"] == 120.0
    assert updated["ptb_lstm_light_dropout_valid_perplexity"] == 115.0
    rows = language_model.experiment_rows(updated)
    assert rows["ptb_lstm_light_dropout"] == {"valid_perplexity": 115.0}


def test_heldout_record_counts_every_test_scoring(tmp_path):
    from benchmarks import heldout

    path = tmp_path / "app.json"
    results_file.write(path, {"test_evaluations": 2, "test_evaluation_log": [{}, {}], "x": 1})
    args = dict(command="python -m benchmarks.x", budget_minutes=60, conditions="idle", machine="m")
    heldout.record(path, "recipe", {"f1": 90.0}, {"f1": 87.5}, **args)
    results = heldout.record(path, "recipe", {"f1": 90.5}, {"f1": 88.0}, **args)
    assert results["test_evaluations"] == 4  # earlier scorings are never forgotten
    assert len(results["test_evaluation_log"]) == 4
    assert results["recipe_dev_f1"] == 90.5 and results["recipe_test_f1"] == 88.0
    assert results["x"] == 1 and results["recipe_budget_minutes"] == 60
    try:
        heldout.record(path, "recipe", {"f1": 1.0}, {}, **args)
    except ValueError as error:
        assert "test figure" in str(error)
    else:
        raise AssertionError("a record without test figures was accepted")
    assert results_file.read(path)["test_evaluations"] == 4


def test_host_cpu_reads_model_and_kernel_flags():
    from benchmarks import host

    info = host.cpu("model name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2 fma avx512f avx512_bf16\n")
    assert info == {"model": "AMD EPYC 9B14", "flags": ["avx2", "fma", "avx512f", "avx512_bf16"]}
    assert host.cpu("flags: sse sse2\n")["flags"] == []


@pytest.mark.slow
def test_translation_final_scores_dev_and_test_together_and_counts_the_test(tmp_path):
    from tests.apps.test_translation import TINY, data_flags, write_pairs

    test_source, test_target = write_pairs(tmp_path, "test", 40, seed=2)
    output = tmp_path / "translation.json"
    results = translation.final(
        data_flags(tmp_path),
        ["--test-source", str(test_source), "--test-target", str(test_target)],
        tmp_path / "run",
        conditions="tests",
        command="the command",
        recipe=shlex.join([*TINY, "--epochs", "2"]),
        budget_minutes=5,
        output=output,
    )
    assert results == json.loads(output.read_text())
    assert results["test_evaluations"] == 1
    for split in ("dev", "test"):
        assert 0 <= results[f"final_{split}_bleu_beam1"] <= 100
        assert 0 <= results[f"final_{split}_bleu_beam3"] <= 100
    assert results["final_budget_minutes"] == 5 and results["final_conditions"] == "tests"
    assert (tmp_path / "run" / "translations" / "test.beam3.txt").exists()


@pytest.mark.slow
def test_language_model_final_scores_valid_and_test_together_and_counts_the_test(tmp_path):
    import gzip

    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "N"]

    def text(lines: int) -> str:
        return "".join(" " + " ".join(rng.choice(words, 8)) + " \n" for _ in range(lines))

    (tmp_path / "ptb").mkdir()
    with gzip.open(tmp_path / "ptb" / "ptb.train.txt.gz", "wt") as train:
        train.write(text(200))
    (tmp_path / "ptb" / "ptb.valid.txt").write_text(text(30))
    (tmp_path / "ptb" / "ptb.test.txt").write_text(text(30))
    output = tmp_path / "language_model.json"
    recipe = (
        "--num-layers 1 --units 8 --tie-embeddings true --batch-size 4 --bptt 5 --epochs 2 "
        "--steps-per-epoch 5"
    )
    results = language_model.final(
        str(tmp_path), tmp_path / "run", "tests", "the command", recipe, 5, output
    )
    assert results == json.loads(output.read_text())
    assert results["test_evaluations"] == 1
    for split in ("dev", "test"):
        assert 1 < results[f"final_{split}_perplexity"] < 12  # 10 words, <eos> and <unk>
        assert results[f"final_{split}_ngram_perplexity"] > 1
    assert results["final_test_num_targets"] == 30 * 9 - 1  # every token but the first
    assert results["final_command"] == "the command" and results["final_budget_minutes"] == 5


def test_merge_run_keeps_earlier_figures_and_records_the_run(tmp_path):
    import time

    path = tmp_path / "speed.json"
    results_file.write(path, {"sentiment_ratio": 2.0, "command": "old"})
    merged = results_file.merge_run(path, {"tagging_ratio": 1.5}, command="python -m benchmarks.x --apps tagging",
                                    conditions="", load=[0.5, 1.25], started=time.perf_counter(), note="n")  # fmt: skip
    assert results_file.read(path) == merged
    assert merged["sentiment_ratio"] == 2.0 and merged["tagging_ratio"] == 1.5 and merged["note"] == "n"
    assert merged["command"] == "python -m benchmarks.x --apps tagging"
    assert merged["conditions"] == "load average 0.5-1.2" and merged["wall_s"] >= 0
    assert "CPU" in merged["machine"] or "cores" in merged["machine"]
