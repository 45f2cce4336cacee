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

def _rows(kind: str, prefix: str, what: str, must_hold: str, subjects) -> list:
    """Rows of one kind of trial: `what` per subject (a format of `subject` and `about`),
    `must_hold` said once, then "the same"."""
    return [([kind, what.format(subject=subject, about=about), "the same" if index else must_hold],
             {"prefix": f"{prefix}_{subject}"})
            for index, (subject, about) in enumerate(subjects)]  # fmt: skip


_RELIABILITY_ROWS = [
    (["kill -9", "`adding` train: killed at a random time or at a random write into its run "
      "directory, then rerun", "resumes after its last committed epoch; each epoch once in "
      "history.csv; final weights bit-equal to an uninterrupted run"], {"prefix": "kill_adding"}),
    *_rows("kill -9", "kill", "`{subject}` train: the same kills ({about})",
           "resumes after its last committed epoch; each epoch once; ends at the last epoch",
           [("sentiment", "one pass an epoch, dropout: equal weights not promised"),
            ("tagging", "one pass an epoch, word dropout and dropout"),
            ("translation", "one pass an epoch in shuffled buckets"),
            ("language_model", "stateful streams")]),
    (["kill -9", "`python -m tuning search` (3 trials): killed at a random time, then rerun",
      "every trial COMPLETED once; trials completed before the kill kept, not rerun"],
     {"prefix": "kill_tuner"}),
    *_rows("kill -9", "vocabulary", "{about} tokenizer: killed at each write of its vocab/ files "
           "in turn, then rerun", "the rerun trains with the uninterrupted run's files (no "
           "partial file trusted)",
           [(name, name.replace("_", " ")) for name in (
               "sentiment_words", "sentiment_sentencepiece", "tagging", "translation_joint",
               "translation_separate", "language_model_word", "language_model_sentencepiece")]),
    *_rows("bad input", "fuzz", "{about}: generated malformed files",
           "accepted, or exit 2 with one final line `error: FILE[:LINE]: ...`, no traceback, "
           "the run directory unchanged (a new one not made)",
           [("conll", "CoNLL (`tagging evaluate`, `train`)"), ("conllu", "CoNLL-U (`tagging evaluate`)"),
            ("parallel", "parallel text (`translation evaluate`, `train`)"),
            ("jsonl", "classification JSONL (`sentiment evaluate`)"),
            ("csv", "classification CSV (`sentiment evaluate`)"),
            ("tsv", "classification TSV (`sentiment evaluate`)"),
            ("aclimdb", "aclImdb review folders (`sentiment evaluate --data-dir`)"),
            ("plain_text", "plain text (`language_model evaluate`, `train`)"),
            ("coco_captions", "COCO caption JSON (the reader: no app reads it yet)"),
            ("jsb", "JSB chorales JSON (the reader)")]),
    *_rows("bad input", "options", "`{subject}`: random option values in and out of their "
           "ranges, any command", "inside: accepted; outside: exit 2, one line naming the "
           "option, the run directory unchanged",
           [(app, "") for app in ("adding", "sentiment", "tagging", "translation", "language_model")]),
    *_rows("serving", "serving", "export `{subject}`{about}", "each element's outputs equal to "
           "its outputs alone; plain `tf.saved_model.load` gives the same outputs",
           [(name, ": empty, 100,000-character, invalid UTF-8, emoji and mixed batches; 0, 1 and "
             "1,024 elements; 8 threads at once; a process without the suite" if not index else "")
            for index, name in enumerate((
                "sentiment_words", "sentiment_sentencepiece", "sentiment_ensemble",
                "tagging", "tagging_ensemble", "translation_joint", "translation_separate",
                "translation_ensemble", "language_model_word", "language_model_char"))]),
    (["serving", "export `adding`: float sequences (ordinary, zeros, +-1e30); 0, 1 and 1,024 "
      "elements; 8 threads; a process without the suite", "the same"], {"prefix": "serving_adding"}),
    (["serving", "every run directory above, exports included", "no pickle file"],
     {"prefix": "no_pickle_all"}),
    (["serving", "every `.keras` checkpoint above", "loads with `safe_mode=True`"],
     {"prefix": "safe_mode_all"}),
    (["multi-worker", "`adding` train, MultiWorkerMirroredStrategy, two workers on 127.0.0.1: "
      "both killed after a random epoch, restarted",
      "each epoch once; weights bit-equal to an uninterrupted two-worker run; valid MSE within "
      "2 % of one worker's"], {"prefix": "multi_worker_adding"}),
]
RELIABILITY = KeyTable(
    readme="README.md",
    file="reliability",
    headers=["kind", "what was tried", "what must hold"],
    columns=[Column("trials", "{prefix}_trials", integer), Column("held", "{prefix}_held", integer)],
    rows=_RELIABILITY_ROWS,
)
RELIABILITY_RUN = KeyTable(
    readme="README.md",
    file="reliability",
    headers=["campaign"],
    columns=[Column("value", "{key}", text)],
    rows=[
        (["command"], {"key": "command", "format": lambda value: f"`{value}`"}),
        (["date"], {"key": "date"}),
        (["wall time"], {"key": "wall_time_s", "format": minutes}),
        (["machine"], {"key": "machine"}),
        (["conditions"], {"key": "conditions"}),
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

#: README table name -> table.
TABLES = {
    "targets": TARGETS,
    "sentiment-results": SENTIMENT,
    "demo": DEMO,
    "pipeline-results": PIPELINE,
    "pipeline-targets": PIPELINE_TARGETS,
    "reliability": RELIABILITY,
    "reliability-run": RELIABILITY_RUN,
    "tuning-jsb": ABLATION_JSB,
    "tuning-demo": ABLATION_DEMO,
}
