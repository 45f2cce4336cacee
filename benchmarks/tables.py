"""Which runs of `benchmarks/results/*.json` each README table shows, and how they are
described; `benchmarks/summary.py` renders them (every figure is read from the files)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from benchmarks.summary import (
    Column,
    KeyTable,
    Row,
    RunTable,
    Target,
    TargetTable,
    fixed,
    integer,
    minutes,
    percent,
    text,
)

TARGETS = TargetTable(
    readme="README.md",
    targets=[
        Target("sentiment", "IMDB test accuracy >= 90.0 % in <= 45 min", "sentiment", "ensemble",
               test_key="test_accuracy", dev_key=None, threshold=0.90, higher_is_better=True,
               format=percent, keys={"command": "benchmark_command"}),
        Target("tagging", "CoNLL-2003 NER test F1 >= 87.0 in <= 60 min", "tagging",
               "ner_conll2003_dev", test_key="test_f1", dev_key="f1", threshold=0.87,
               higher_is_better=True, format=percent),
        Target("tagging", "UD EWT UPOS test accuracy >= 95.5 % in <= 60 min", "tagging",
               "pos_dev_ensemble_fast_posterior", test_key="test_accuracy", dev_key="accuracy",
               threshold=0.955, higher_is_better=True, format=percent),
        Target("translation", "Multi30k en-de test2016 BLEU >= 36.0 in <= 90 min", "translation",
               "drop04_88", test_key="test_bleu_beam5", dev_key="valid_bleu_beam5", threshold=36.0,
               higher_is_better=True, dev_label="val, beam 5"),
        Target("language_model", "PTB test perplexity <= 105 in <= 60 min", "language_model",
               "ptb_lstm_light_dropout", test_key="test_perplexity", dev_key="valid_perplexity",
               threshold=105.0, higher_is_better=False, format=fixed(1), dev_label="valid"),
        Target("language_model", "Tiny Shakespeare valid <= 1.50 nats/char in <= 60 min",
               "language_model", "shakespeare_lstm", test_key=None,
               dev_key="valid_nats_per_token", threshold=1.50, higher_is_better=False,
               format=fixed(3), dev_label="valid"),
    ],
)

SENTIMENT = RunTable(
    readme="apps/sentiment/README.md",
    first_header="model (IMDB, no pretrained embeddings)",
    columns=[
        Column("validation accuracy", "validation_accuracy", percent),
        Column("test accuracy", "test_accuracy", percent),
        Column("parameters", "parameters", lambda value: f"{value / 1e6:.2f} M"),
    ],
    rows=[
        Row("sentiment", "ensemble", "**Ensemble of 10** BiGRU-64 / BiLSTM-64 members (words "
            "15k-25k and SentencePiece unigram/BPE 8k-16k, 2 epochs each, seeds 1234-1243; mean "
            "probability)", keys={"command": "benchmark_command"}),
        Row("sentiment", "gru64", "BiGRU-64, words 15k, embedding dropout 0.5, max+mean pooling"),
        Row("sentiment", "sp16k", "BiGRU-64, SentencePiece unigram 16k, embedding dropout 0.5"),
        Row("sentiment", "gru", "BiGRU-128, words 30k, embedding dropout 0.3"),
        Row("sentiment", "cifg", "Bi-CIFG-64 (coupled input-forget gate, peepholes), words 30k"),
        Row("sentiment", "vardrop", "BiGRU-64, words 15k, variational dropout 0.25 on input and "
            "state (validation only)"),
        Row("sentiment", "pretrain", "BiGRU-64, SentencePiece 16k, after 3 epochs of language-"
            "model pretraining (validation only)"),
    ],
)

DEMO = RunTable(
    readme="README.md",
    first_header="model (T = 100, 64 units)",
    columns=[
        Column("parameters", "parameters", integer),
        Column("final test MSE", "test_mse", fixed(5)),
        Column("steps to MSE < 0.01", "steps_to_solve", integer),
        Column("steps trained", "steps_trained", integer),
    ],
    rows=[
        Row("adding", "demo_rnn", "rnn (tanh)", shared="demo"),
        Row("adding", "demo_lstm", "lstm", shared="demo"),
        Row("adding", "demo_gru", "gru", shared="demo"),
    ],
)

def _percent1(value: float) -> str:
    return f"{100 * value:.1f} %"


def _times(value: float) -> str:
    return f"{value:.1f}x"


_IMDB_MODES = ("padded_batch", "bucketing", "token_budget_bucketing")
_MULTI30K_MODES = (
    "padded_batch", "bucketing", "token_budget_bucketing",
    *(f"morishita_{order}{suffix}" for order in ("shuffle", "src", "tgt", "src_tgt", "tgt_src")
      for suffix in ("", "_tokens")),
)
PIPELINE = KeyTable(
    readme="pipelines/README.md",
    file="pipeline",
    headers=["data", "mode"],
    columns=[
        Column("padded tokens", "{data}_padded_fraction_{mode}", _percent1),
        Column("mean batch", "{data}_mean_batch_size_{mode}", fixed(2)),
        Column("max batch x time", "{data}_max_batch_tokens_{mode}", integer),
        Column("ex/s (wall)", "{data}_examples_per_s_{mode}", integer),
        Column("ex/CPU-s", "{data}_examples_per_cpu_s_{mode}", integer),
    ],
    rows=[
        *((["IMDB train", mode], {"data": "imdb", "mode": mode}) for mode in _IMDB_MODES),
        *((["Multi30k train", mode], {"data": "multi30k", "mode": mode}) for mode in _MULTI30K_MODES),
    ],
)
PIPELINE_TARGETS = KeyTable(
    readme="pipelines/README.md",
    file="pipeline",
    headers=["figure (IMDB, token-budget bucketing)", "target"],
    columns=[Column("measured", "{key}", fixed(1))],
    rows=[
        (["padded tokens", "<= 5 %"],
         {"key": "imdb_padded_fraction_token_budget_bucketing", "format": _percent1}),
        (["padded tokens of plain padded_batch (for comparison)", "-"],
         {"key": "imdb_padded_fraction_padded_batch", "format": _percent1}),
        (["cached pipeline rate / the rate a 1x256 LSTM classifier consumes (wall)", "-"],
         {"key": "imdb_pipeline_over_training_ratio", "format": _times}),
        (["the same per CPU-second", "-"],
         {"key": "imdb_pipeline_over_training_ratio_per_cpu_s", "format": _times}),
        (["uncached pipeline (SentencePiece in the loop) / LSTM consumption", ">= 10x"],
         {"key": "imdb_uncached_pipeline_over_training_ratio", "format": _times}),
    ],
)

def _significant(value: float) -> str:
    """3 significant digits (MSEs from 1e-4 to the chance level)."""
    return f"{value:.3g}"


def _ablation(file: str, variants: Sequence[str], value_format: Callable) -> KeyTable:
    """A per-variant table of a `python -m tuning report --benchmark-json` file."""
    return KeyTable(
        readme="tuning/README.md",
        file=file,
        headers=["variant"],
        columns=[
            Column("trials", "{variant}_completed", integer),
            Column("best", "{variant}_best", value_format),
            Column("median", "{variant}_median", value_format),
            Column("mean", "{variant}_mean", value_format),
            Column("std", "{variant}_std", value_format),
            Column("parameters (median)", "{variant}_parameters_median", integer),
            Column("s/trial", "{variant}_trial_wall_time_mean_s", fixed(1)),
            Column("p vs vanilla (Welch)", "{variant}_p", lambda value: f"{value:.2g}"),
            Column("verdict", "{variant}_verdict", text),
        ],
        rows=[([variant], {"variant": variant}) for variant in variants],
    )


ABLATION_JSB = _ablation(
    "ablation_jsb", ["vanilla", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr"], fixed(3)
)
ABLATION_DEMO = _ablation(
    "ablation_adding_demo", ["vanilla", "nfg", "noaf", "cifg", "gru", "rnn"], _significant
)

def _met(threshold: float) -> Callable[[float], str]:
    return lambda ratio: "**met**" if ratio >= threshold else "not met"


def _code(value) -> str:
    return f"`{value}`"


def _run_facts(file: str, extra: Sequence[tuple[str, str]] = ()) -> KeyTable:
    """Command, date, wall time, machine and conditions of a results file."""
    facts = [("command", "command", _code), *extra, ("date", "date", text), ("wall time", "wall_s", minutes),
             ("machine", "machine", text), ("conditions", "conditions", text)]
    return KeyTable(readme="README.md", file=file, headers=["run"], columns=[Column("", "{key}", text)],
                    rows=[([name], {"key": key, "format": format}) for name, key, format in facts])


_SUBJECTS = {
    "sentiment": "sentiment", "tagging": "tagging", "translation greedy": "translation_greedy",
    "translation beam 5": "translation_beam5", "language model generate (32 tokens)": "language_model_generate",
    "language model score": "language_model_score",
}  # fmt: skip
SERVING = KeyTable(
    readme="README.md",
    file="serving",
    headers=["export"],
    columns=[
        Column("b1 p50 ms", "{s}_b1_p50_ms", fixed(1)),
        Column("plain b1 p50 ms", "{s}_plain_b1_p50_ms", fixed(1)),
        Column("b1 p99 ms", "{s}_b1_p99_ms", fixed(1)),
        Column("plain b1 p99 ms", "{s}_plain_b1_p99_ms", fixed(1)),
        Column("b1 speed-up", "{s}_b1_ratio_vs_plain", _times),
        Column("b1 >= 3x", "{s}_b1_ratio_vs_plain", _met(3.0)),
        Column("b64 req/s", "{s}_b64_per_s", fixed(1)),
        Column("plain b64 req/s", "{s}_plain_b64_per_s", fixed(1)),
        Column("b64 speed-up", "{s}_b64_ratio_vs_plain", _times),
        Column("b64 >= 1.5x", "{s}_b64_ratio_vs_plain", _met(1.5)),
        Column("same outputs b1 / b64", "{s}_b1_identical_fraction", percent),
        Column("", "{s}_b64_identical_fraction", percent),
        Column("max float diff", "{s}_b64_max_abs_diff", lambda value: f"{value:.1g}"),
        Column("first pass s (compiles)", "{s}_b1_first_pass_s", fixed(1)),
        Column("plain first pass s", "{s}_plain_b1_first_pass_s", fixed(1)),
    ],
    rows=[([name], {"s": subject}) for name, subject in _SUBJECTS.items()],
)
SERVING_RUN = _run_facts("serving", [(f"{app} run trained by", f"{app}_train_command", _code)
                                     for app in ("sentiment", "tagging", "translation", "language_model")]
                         + [("bf16", "bf16_skipped", text)])  # fmt: skip

_APPS = ("sentiment", "tagging", "translation", "language_model")
APP_SPEED = KeyTable(
    readme="README.md",
    file="app_speed",
    headers=["app"],
    columns=[
        Column("suite tokens/s", "{app}_suite_tokens_per_s", integer),
        Column("Keras twin tokens/s", "{app}_keras_tokens_per_s", integer),
        Column("ratio", "{app}_train_ratio_vs_keras", _times),
        Column(">= 1.3x", "{app}_train_ratio_vs_keras", _met(1.3)),
        Column("quality after the epoch", "{app}_suite_quality_name", text),
        Column("suite", "{app}_suite_quality", fixed(3)),
        Column("twin", "{app}_keras_quality", fixed(3)),
        Column("train step alone: suite / twin tokens/s", "{app}_suite_step_tokens_per_s", integer),
        Column("", "{app}_keras_step_tokens_per_s", integer),
        Column("input pipeline alone: suite / twin tokens/s", "{app}_suite_pipeline_tokens_per_s", integer),
        Column("", "{app}_keras_pipeline_tokens_per_s", integer),
        Column("examples", "{app}_examples", integer),
        Column("`--help` s", "{app}_startup_help_s", fixed(2)),
        Column("option error s", "{app}_startup_option_error_s", fixed(2)),
    ],
    rows=[([app], {"app": app}) for app in _APPS],
)
APP_SPEED_RUN = _run_facts("app_speed")

#: README table name -> table.
TABLES = {
    "targets": TARGETS,
    "sentiment-results": SENTIMENT,
    "demo": DEMO,
    "pipeline-results": PIPELINE,
    "pipeline-targets": PIPELINE_TARGETS,
    "tuning-jsb": ABLATION_JSB,
    "tuning-demo": ABLATION_DEMO,
    "serving": SERVING,
    "serving-run": SERVING_RUN,
    "app-speed": APP_SPEED,
    "app-speed-run": APP_SPEED_RUN,
}
