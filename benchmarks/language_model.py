"""Quality runs of apps/language_model on real data; figures go to
benchmarks/results/language_model.json, from which the app README's tables are generated
(`python -m benchmarks.summary --write`, rows declared in `benchmarks/tables.py`).

    python -m benchmarks.language_model list
    python -m benchmarks.language_model run shakespeare_lstm      # one experiment
    python -m benchmarks.language_model final                     # PTB valid and test

Each experiment is one `python -m apps.language_model train` command (run in this
process), with a wall-time budget (`--max-train-minutes`). Its whole-split validation
figures (state carried), the n-gram baseline on the same split, the command, the date
and the wall time are merged into the results file as flat keys `<experiment>_<metric>`
(e.g. `shakespeare_lstm_valid_nats_per_token`, `shakespeare_lstm_command`), next to a
top-level `machine`. Data: Tiny Shakespeare (first 90 % of the characters train, the rest
validate, as nanoGPT) and Mikolov's PTB (train, valid) under --data-root.

`final` trains the PTB recipe fixed on the validation split (`FINAL_RECIPE`) within
`FINAL_BUDGET_MINUTES`, then scores its best checkpoint on ptb.valid.txt and ptb.test.txt
with the app's own `evaluate` (whole split, state carried, one stream; the 5-gram
Kneser-Ney baseline beside it) and records both side by side through
`benchmarks.heldout.record` under `FINAL_NAME`, counting the test scoring.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path

from benchmarks import heldout, results_file
from benchmarks.host import machine, machine_of_nested_host, run_precision

RESULTS = Path(__file__).resolve().parent / "results" / "language_model.json"
DATA_ROOT = os.environ.get("RNN_SUITE_DATA", "/work/shared/data")


def _shakespeare(minutes: float, options: str) -> list[str]:
    return shlex.split(
        "--text-file {data}/tinyshakespeare/input.txt --valid-fraction 0.1 --tokenizer char "
        f"--max-train-minutes {minutes} --epochs 1000 --ngram-order 7 --verbose 2 {options}"
    )


def _ptb(minutes: float, options: str) -> list[str]:
    return shlex.split(
        "--train-file {data}/ptb/ptb.train.txt.gz --valid-file {data}/ptb/ptb.valid.txt "
        f"--tokenizer word --max-train-minutes {minutes} --epochs 1000 --ngram-order 5 "
        f"--ngram-discount 0 --verbose 2 {options}"
    )


_CHAR_MODEL = (
    "--num-layers 2 --units 512 --embedding-size 64 --dropout 0.25 --batch-size 32 --bptt 128 "
    "--learning-rate 0.002 --clip-norm 1.0 --steps-per-epoch 200 --lr-decay-patience 1"
)
_WORD_MODEL = (
    "--num-layers 2 --units 400 --tie-embeddings true --dropout 0.4 --input-dropout 0.2 "
    "--batch-size 64 --bptt 35 --learning-rate 0.003 --clip-norm 1.0 --steps-per-epoch 200 "
    "--lr-decay-patience 0 --mixed-precision mixed_bfloat16 --eval-batch-size 1"
)
# The first PTB run (`ptb_lstm`) underfitted: its train perplexity under dropout stayed
# near its validation perplexity, and patience-0 decay halved the rate six times from
# epoch 15. This one drops less and decays only after two epochs without improvement.
_WORD_MODEL_LIGHT = _WORD_MODEL.replace(
    "--dropout 0.4 --input-dropout 0.2", "--dropout 0.25 --input-dropout 0.1"
).replace("--lr-decay-patience 0", "--lr-decay-patience 1")
# Equal-budget comparison on Tiny Shakespeare: one 256-unit layer, 10 minutes each (run
# two at a time, each on one core: `--conditions`).
_COMPARE = (
    "--num-layers 1 --units 256 --embedding-size 64 --batch-size 32 --bptt 100 "
    "--learning-rate 0.003 --clip-norm 1.0 --steps-per-epoch 100 --lr-schedule constant"
)
_COMPARE_MINUTES = 10.0

#: name -> (dataset, target, app arguments)
EXPERIMENTS: dict[str, tuple[str, str, list[str]]] = {
    "shakespeare_lstm": (
        "tiny_shakespeare",
        "valid nats/char <= 1.50 in 60 min",
        _shakespeare(60, _CHAR_MODEL),
    ),
    "ptb_lstm": ("ptb", "valid perplexity <= 110 in 60 min", _ptb(60, _WORD_MODEL)),
    "ptb_lstm_light_dropout": (
        "ptb",
        "valid perplexity <= 110 in 60 min",
        _ptb(60, _WORD_MODEL_LIGHT),
    ),
    **{
        f"compare_{cell}_{mode}": (
            "tiny_shakespeare",
            "comparison",
            _shakespeare(_COMPARE_MINUTES, f"{_COMPARE} --cell {cell} --training-mode {mode}"),
        )
        for cell, mode in (
            ("lstm", "stateful"),
            ("lstm", "stateless"),
            ("gru", "stateful"),
            ("cifg", "stateful"),
        )
    },
}


FINAL_NAME = "final"
FINAL_BUDGET_MINUTES = 60.0
#: The PTB recipe of `final`: `ptb_lstm_light_dropout`'s flags (chosen on the validation
#: split) with `--mixed-precision auto` (float32 on CPUs without AMX / AVX512-BF16, where
#: bfloat16 is slower). The app now ties with an output bias started at the log unigram
#: frequencies; on that model `benchmarks.lm_diagnosis` kept Adam 3e-3 (1e-3 learnt
#: slower) and stateful streams.
FINAL_RECIPE = _WORD_MODEL_LIGHT.replace(
    "--mixed-precision mixed_bfloat16", "--mixed-precision auto"
)
_FINAL_FIGURES = ("perplexity", "nats_per_token", "bits_per_char", "num_targets")

NOTE = (
    "wall times on the 2 CPU cores, otherwise idle unless an experiment's `conditions` "
    "says what shared them"
)


def _experiment_of(key: str) -> str | None:
    """The experiment a flat key belongs to (None for top-level keys such as `machine`)."""
    return results_file.owner(key, EXPERIMENTS)


def _from_nested(results: dict) -> dict:
    """The flat layout of a results file written in the old nested one
    (`{"host": {...}, "experiments": {name: {...}}}`); figures unchanged."""
    host = results["host"]
    flat = {
        "machine": machine_of_nested_host(host),
        "note": host.get("note", NOTE),
    }
    for name, row in results["experiments"].items():
        flat.update({f"{name}_{key}": value for key, value in row.items()})
    return flat


def load_results() -> dict:
    """The results file as a flat dict (converted if it is still in the nested layout)."""
    results = results_file.read(RESULTS)
    return _from_nested(results) if "experiments" in results else results


def _save(results: dict) -> None:
    results_file.write(RESULTS, results)


def experiment_rows(results: dict) -> dict[str, dict]:
    """name -> that experiment's figures (its keys without the `<name>_` prefix), in the
    order the experiments first appear in the file."""
    rows: dict[str, dict] = {}
    for key, value in results.items():
        name = _experiment_of(key)
        if name is not None:
            rows.setdefault(name, {})[key[len(name) + 1 :]] = value
    return rows


def _with_row(results: dict, name: str, row: dict) -> dict:
    """`results` with experiment `name`'s keys replaced by `row` (prefixed), in place of
    the old ones (at the end for a new experiment)."""
    prefixed = {f"{name}_{key}": value for key, value in row.items()}
    updated, placed = {}, False
    for key, value in results.items():
        if _experiment_of(key) == name:
            if not placed:
                updated.update(prefixed)
                placed = True
        else:
            updated[key] = value
    if not placed:
        updated.update(prefixed)
    return updated


def _flat(metrics: dict) -> dict:
    """The figures worth a table, as one flat dict."""
    flat = {}
    for key in ("valid", "test", "ngram_valid", "ngram_test"):
        scores = metrics.get(key)
        if not scores:
            continue
        for name in (
            "perplexity",
            "nats_per_token",
            "bits_per_token",
            "nats_per_char",
            "bits_per_char",
        ):
            if name in scores:
                flat[f"{key}_{name}"] = round(float(scores[name]), 4)
        if "model" in scores:
            flat[f"{key}_model"] = scores["model"]
    history = metrics.get("history", {})
    for name in ("val_cross_entropy", "cross_entropy"):
        if history.get(name):
            flat[f"last_epoch_{name}"] = round(float(history[name][-1]), 4)
    for name in ("parameters", "train_seconds", "epochs_trained", "vocab_size", "train_tokens"):
        if name in metrics:
            flat[name] = metrics[name]
    return flat


def run(name: str, data_root: str, run_root: str, conditions: str = "") -> dict:
    from apps.language_model.__main__ import main

    dataset, target, arguments = EXPERIMENTS[name]
    run_dir = Path(run_root) / name
    argv = ["train", "--run-dir", str(run_dir)] + [a.format(data=data_root) for a in arguments]
    start = time.time()
    metrics = main(argv)
    wall = time.time() - start
    row = {
        "dataset": dataset,
        "target": target,
        **_flat(metrics),
        "wall_seconds": round(wall, 1),
        "command": "python -m apps.language_model " + shlex.join(argv),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
    }
    if conditions:
        row["conditions"] = conditions
    with results_file.locked(RESULTS):
        results = load_results()
        results = {
            "machine": machine(),
            "note": NOTE,
            **{k: v for k, v in results.items() if k not in ("machine", "note")},
        }
        _save(_with_row(results, name, row))
    print(json.dumps(row, indent=2))
    return row


def evaluate(name: str, run_root: str) -> None:
    """Re-scores an experiment's checkpoint over the whole validation split in one stream
    (`--eval-batch-size 1`) and updates its record (the figures it replaces are kept
    with the number of streams in their names)."""
    from apps.language_model.__main__ import main

    run_dir = Path(run_root) / name
    argv = [
        "evaluate",
        "--run-dir",
        str(run_dir),
        "--eval-batch-size",
        "1",
        "--eval-bptt",
        "1000",
        "--ngram-order",
        "0",
    ]
    metrics = main(argv)
    with results_file.locked(RESULTS):
        _record_evaluation(name, run_dir, metrics, argv)


def _record_evaluation(name: str, run_dir: Path, metrics: dict, argv: list[str]) -> None:
    results = load_results()
    row = experiment_rows(results)[name]
    config = json.loads((run_dir / "config.json").read_text())
    streams = config.get("eval_batch_size", 1)
    if streams != 1 and f"valid_{streams}_streams_nats_per_token" not in row:
        for key in [k for k in row if k.startswith("valid_")]:
            row[key.replace("valid_", f"valid_{streams}_streams_", 1)] = row[key]
    row.update(_flat({"valid": metrics["valid"]}))
    row["eval_command"] = "python -m apps.language_model " + shlex.join(argv)
    _save(_with_row(results, name, row))
    print(json.dumps(row, indent=2))


def _final_figures(metrics: dict, split: str) -> dict:
    figures = {key: metrics[split][key] for key in _FINAL_FIGURES}
    ngram = metrics.get(f"ngram_{split}")
    if ngram:
        figures["ngram_perplexity"] = ngram["perplexity"]
    return figures


def final(
    data_root: str,
    run_dir: Path,
    conditions: str,
    command: str,
    recipe: str = FINAL_RECIPE,
    budget_minutes: float = FINAL_BUDGET_MINUTES,
    output: Path = RESULTS,
) -> dict:
    """Trains `recipe` on PTB within `budget_minutes`, scores valid and test with its best
    checkpoint and records both (one more test evaluation in `output`)."""
    from apps.language_model.__main__ import main as app

    train_argv = [
        "train", "--run-dir", str(run_dir),
        "--train-file", f"{data_root}/ptb/ptb.train.txt.gz",
        "--valid-file", f"{data_root}/ptb/ptb.valid.txt",
        "--tokenizer", "word", "--epochs", "1000", "--ngram-order", "0", "--verbose", "2",
        *shlex.split(recipe), "--max-train-minutes", f"{budget_minutes:g}",
    ]  # fmt: skip
    trained = app(train_argv)
    evaluate_argv = ["evaluate", "--run-dir", str(run_dir), "--eval-batch-size", "1",
                     "--ngram-order", "5", "--ngram-discount", "0"]  # fmt: skip
    test_argv = [*evaluate_argv, "--split", "test", "--test-file", f"{data_root}/ptb/ptb.test.txt"]
    # Each evaluation returns its own split's figures (and its n-gram baseline's).
    valid, test = app([*evaluate_argv, "--split", "valid"]), app(test_argv)
    scored = {key: run[key] for run, split in ((valid, "valid"), (test, "test"))
              for key in (split, f"ngram_{split}") if key in run}  # fmt: skip
    return heldout.record(
        output,
        FINAL_NAME,
        dev=_final_figures(scored, "valid"),
        test=_final_figures(scored, "test"),
        command=command,
        budget_minutes=budget_minutes,
        conditions=conditions,
        extra={
            "dev_split": "ptb.valid.txt, whole split in one stream, state carried",
            "test_split": "ptb.test.txt, whole split in one stream, state carried",
            "ngram_model": scored["ngram_test"]["model"] if "ngram_test" in scored else "",
            "precision": run_precision(run_dir),
            "parameters": trained["parameters"],
            "train_seconds": round(trained["train_seconds"], 1),
            "epochs_trained": trained["epochs_trained"],
            "train_tokens": trained["train_tokens"],
            "best_val_cross_entropy_windows": round(
                min(trained["history"]["val_cross_entropy"]), 4
            ),
            "train_command": "python -m apps.language_model " + shlex.join(train_argv),
            "test_command": "python -m apps.language_model " + shlex.join(test_argv),
            "run_dir": str(run_dir),
        },
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.language_model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the experiments and their commands")
    run_parser = sub.add_parser("run", help="run one experiment and record it")
    run_parser.add_argument("name", choices=sorted(EXPERIMENTS))
    run_parser.add_argument("--data-root", default=DATA_ROOT)
    run_parser.add_argument("--run-root", default="runs/language_model_benchmarks")
    run_parser.add_argument(
        "--conditions", default="", help="what else shared the machine (saved with the figures)"
    )
    evaluate_parser = sub.add_parser("evaluate", help="re-score a run in one stream, update it")
    evaluate_parser.add_argument("name", choices=sorted(EXPERIMENTS))
    evaluate_parser.add_argument("--run-root", default="runs/language_model_benchmarks")
    final_parser = sub.add_parser(
        "final", help="train the fixed PTB recipe, score valid and test together, record both"
    )
    final_parser.add_argument("--data-root", default=DATA_ROOT)
    final_parser.add_argument("--run-dir", default="runs/language_model_benchmarks/final")
    final_parser.add_argument("--conditions", default="", help="what shared the machine")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, (dataset, target, arguments) in EXPERIMENTS.items():
            print(f"{name} ({dataset}; {target}):\n  train {shlex.join(arguments)}")
    elif args.command == "run":
        run(args.name, args.data_root, args.run_root, args.conditions)
    elif args.command == "evaluate":
        evaluate(args.name, args.run_root)
    elif args.command == "final":
        command = "python -m benchmarks.language_model " + shlex.join(
            sys.argv[1:] if argv is None else argv
        )
        results = final(args.data_root, Path(args.run_dir), args.conditions, command)
        print(json.dumps({k: v for k, v in results.items() if k.startswith("final_")}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
