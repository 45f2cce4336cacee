"""benchmarks/results_file and the merges of the benchmarks that share a results file."""

from __future__ import annotations

import json

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
