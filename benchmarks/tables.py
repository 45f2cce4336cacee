"""Which runs of `benchmarks/results/*.json` each README table shows, and how they are
described; `benchmarks/summary.py` renders them (every figure is read from the files)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from benchmarks.diagnostics import README_TABLES as DIAGNOSTICS_TABLES
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
               "ner_final", test_key="test_f1", dev_key="dev_f1", threshold=0.87,
               higher_is_better=True, format=percent),
        Target("tagging", "UD EWT UPOS test accuracy >= 95.5 % in <= 60 min", "tagging",
               "pos_final", test_key="test_accuracy", dev_key="dev_accuracy",
               threshold=0.955, higher_is_better=True, format=percent),
        Target("translation", "Multi30k en-de test2016 BLEU >= 36.0 in <= 90 min", "translation",
               "drop04_88", test_key="test_bleu_beam5", dev_key="valid_bleu_beam5", threshold=36.0,
               higher_is_better=True, dev_label="val, beam 5"),
        Target("language_model", "PTB test perplexity <= 105 in <= 60 min", "language_model",
               "final", test_key="test_perplexity", dev_key="dev_perplexity",
               threshold=105.0, higher_is_better=False, format=fixed(1), dev_label="valid"),
        Target("language_model", "Tiny Shakespeare valid <= 1.50 nats/char in <= 60 min",
               "language_model", "shakespeare_lstm", test_key=None,
               dev_key="valid_nats_per_token", threshold=1.50, higher_is_better=False,
               format=fixed(3), dev_label="valid"),
        Target("captioning", "rendered shapes: exact captions >= 95 % on 1,000 images of an unseen seed, "
               "trained in <= 10 min", "captioning", "shapes", test_key="test_exact_greedy", dev_key=None,
               threshold=0.95, higher_is_better=True, format=percent),
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

CAPTIONING_SHAPES = RunTable(
    readme="apps/captioning/README.md",
    first_header="rendered shapes, 1,000 test images of an unseen seed",
    columns=[
        Column("exact caption, greedy", "test_exact_greedy", percent),
        Column("exact caption, beam 3", "test_exact_beam3", percent),
        Column("CIDEr-D, greedy", "test_cider_greedy", fixed(3)),
        Column("exact: most frequent caption", "test_exact_most_frequent", percent),
        Column("exact: nearest neighbour", "test_exact_nearest_neighbour", percent),
        Column("images/s, greedy", "test_images_per_s_greedy", fixed(1)),
    ],
    rows=[Row("captioning", "shapes", "small CNN (48 px) + Show-Attend-Tell LSTM-256, from scratch")],
    budget=True,
    machine=True,
)

_CAPTIONING_DECODINGS = (("greedy", "greedy"), ("beam 3", "beam3"), ("beam 5", "beam5"))
CAPTIONING_FLICKR8K = RunTable(
    readme="apps/captioning/README.md",
    first_header="Flickr8k sample, 113 val images, 5 references each",
    columns=[
        *(Column(f"BLEU-4, {name}", f"valid_bleu_4_{key}", fixed(3)) for name, key in _CAPTIONING_DECODINGS),
        *(Column(f"CIDEr-D, {name}", f"valid_cider_{key}", fixed(3)) for name, key in _CAPTIONING_DECODINGS),
        Column("METEOR, beam 3", "valid_meteor_beam3", fixed(3)),
        Column("CIDEr-D: most frequent caption", "valid_cider_most_frequent", fixed(3)),
        Column("CIDEr-D: nearest neighbour", "valid_cider_nearest_neighbour", fixed(3)),
        Column("beats retrieval", "valid_beats_retrieval", lambda value: "yes" if value else "no"),
        Column("images/s, greedy", "valid_images_per_s_greedy", fixed(1)),
        Column("images/s, beam 5", "valid_images_per_s_beam5", fixed(1)),
    ],
    rows=[
        Row("captioning", "flickr8k_attention", "small CNN (96 px) + Show-Attend-Tell LSTM-256, from scratch"),
        Row("captioning", "flickr8k_show_tell", "small CNN (96 px) + Show-and-Tell LSTM-256 (layer-normalised image "
            "vector as the initial state), from scratch"),
    ],
    budget=True,
    machine=True,
)

CAPTIONING_FEATURE_CACHE = RunTable(
    readme="apps/captioning/README.md",
    first_header="frozen encoder on the Flickr8k sample (1,750 captions an epoch)",
    columns=[
        Column("epoch from the feature cache (s)", "epoch_s_cached", fixed(1)),
        Column("epoch running the encoder every batch (s)", "epoch_s_encoder_every_batch", fixed(1)),
        Column("speed-up per epoch", "speedup_per_epoch", lambda value: f"{value:.2f}x"),
        Column("building the cache, once (s)", "build_s", fixed(1)),
    ],
    rows=[Row("captioning", "feature_cache", "ResNet50 (random weights), 160 px, attention decoder",
              wall_key="wall_time_s")],
    machine=True,
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
            ("coco_captions", "COCO caption JSON (`pipelines.captions`, the parser of `captioning train --train-json`)"),
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
      "both killed after a random epoch, restarted; and once with worker 0's backup an epoch "
      "behind worker 1's (killed between their commits)",
      "each epoch once, both resumed from the epoch both committed; weights bit-equal to an "
      "uninterrupted two-worker run; valid MSE within 2 % of one worker's"],
     {"prefix": "multi_worker_adding"}),
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
    headers=["part (`--kinds`)"],
    columns=[Column("command", "run_{kind}_command", lambda value: f"`{value}`"),
             Column("date", "run_{kind}_date", text), Column("wall time", "run_{kind}_wall_time_s", minutes),
             Column("machine", "run_{kind}_machine", text),
             Column("conditions", "run_{kind}_conditions", text)],  # fmt: skip
    rows=[([kind], {"kind": kind}) for kind in
          ("kill", "vocabulary", "tuner", "fuzz", "options", "serving", "multi_worker")],  # fmt: skip
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
    "language model score": "language_model_score", "captioning greedy": "captioning_greedy",
    "captioning beam 5": "captioning_beam5",
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
_SERVED_APPS = ("sentiment", "tagging", "translation", "language_model", "captioning")
SERVING_RUN = _run_facts("serving", [(f"{app} measured by", f"{app}_benchmark_command", _code) for app in _SERVED_APPS]
                         + [(f"{app} run trained by", f"{app}_train_command", _code) for app in _SERVED_APPS]
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


# --------------------------------------------------------------------------- apps/translation

_NOT_MEASURED = "not measured yet"


def _translation(run: str, what: str, budget: float, **keys: str) -> Row:
    return Row("translation", run, what, keys=keys, wall_key="train_wall_s", budget_minutes=budget)


#: The final run records its validation figures as `dev_*` (benchmarks.heldout).
_FINAL_DEV_KEYS = {f"valid_{figure}": f"dev_{figure}" for figure in (
    "bleu_beam1", "bleu_beam5", "sentences_per_s_beam1", "sentences_per_s_beam5")}
TRANSLATION = RunTable(
    readme="apps/translation/README.md",
    first_header="model (Multi30k en-de, lowercased)",
    columns=[
        Column("val BLEU greedy", "valid_bleu_beam1"),
        Column("val BLEU beam 5", "valid_bleu_beam5"),
        Column("test2016 BLEU greedy", "test_bleu_beam1", missing=_NOT_MEASURED),
        Column("test2016 BLEU beam 5", "test_bleu_beam5", missing=_NOT_MEASURED),
        Column("sentences/s greedy", "valid_sentences_per_s_beam1", fixed(1)),
        Column("sentences/s beam 5", "valid_sentences_per_s_beam5", fixed(1)),
        Column('"epochs" of 125 steps', "epochs_trained", integer),
    ],
    rows=[
        _translation("final", "**Final recipe**: the drop04_88 flags with `--mixed-precision auto`, "
                     "trained, then scored on val and test2016 by `python -m benchmarks.translation "
                     "final`", 88, **_FINAL_DEV_KEYS),
        _translation("drop04_88", "**drop04_88**: BiGRU-256 encoder, GRU-512 decoder with deep "
                     "output, Bahdanau attention, weight averaging 0.998, dropout 0.4 (the recipe "
                     "command below)", 88),
        _translation("ema88", "ema88: the same with dropout 0.3", 88),
        _translation("ensemble", "log-linear ensemble of 2 models without weight averaging "
                     "(seeds 1234, 1235; 44 min each)", 90),
        _translation("ensemble_member_1", "its member 1 (seed 1234)", 44),
        _translation("ensemble_member_2", "its member 2 (seed 1235)", 44),
        _translation("main", "one model without weight averaging (`multi30k_gru`)", 88),
    ],
    budget=True,
    machine=True,
)
TRANSLATION_SCHEDULED_SAMPLING = RunTable(
    readme="apps/translation/README.md",
    first_header="training (the multi30k_gru model, 30 minutes, one core each)",
    columns=[
        Column("val BLEU greedy", "valid_bleu_beam1"),
        Column("val BLEU beam 5", "valid_bleu_beam5"),
        Column("sentences/s greedy (one core)", "valid_sentences_per_s_beam1", fixed(1)),
        Column("sentences/s beam 5 (one core)", "valid_sentences_per_s_beam5", fixed(1)),
        Column('"epochs" of 125 steps', "epochs_trained", integer),
    ],
    rows=[
        _translation("teacher_forcing", "teacher forcing", 30),
        _translation("scheduled_sampling", "scheduled sampling, `--scheduled-sampling-type "
                     "inverse_sigmoid --scheduled-sampling-k 200`", 30),
    ],
    budget=True,
    machine=True,
)


# --------------------------------------------------------------------------- apps/tagging


def _points(value: float) -> str:
    """A fraction as points, 91.05 (F1 scores)."""
    return f"{100 * value:.2f}"


def _members(values: Sequence[float]) -> str:
    return ", ".join(f"{100 * value:.2f}" for value in values)


def _tagging(run: str, what: str, budget: float | None = None, **keys: str) -> Row:
    return Row("tagging", run, what, keys=keys, budget_minutes=budget)


#: The final recipes record their dev figures as `dev_*` (benchmarks.heldout).
def _final_dev_keys(*figures: str) -> dict:
    return {figure: f"dev_{figure}" for figure in figures}


TAGGING_NER = RunTable(
    readme="apps/tagging/README.md",
    first_header="model (CoNLL-2003 NER, BIOES, no pretrained embeddings)",
    columns=[
        Column("dev F1", "f1", _points),
        Column("dev F1, unseen mentions", "unseen_f1", _points),
        Column("test F1", "test_f1", _points, missing=_NOT_MEASURED),
        Column("test F1, unseen mentions", "test_unseen_f1", _points, missing=_NOT_MEASURED),
        Column("dev F1 of the members", "member_f1", _members),
        Column("parameters", "parameters", integer),
    ],
    rows=[
        _tagging("ner_final", "**Final recipe**: 3 x (BiLSTM-100 / BiGRU-100 + char BiLSTM-25 + "
                 "CRF, casing feature, weight averaging), 19.5 min each, log-linear pool, Viterbi "
                 "(`python -m benchmarks.tagging_final ner`)", 60,
                 **_final_dev_keys("f1", "unseen_f1", "member_f1")),
        _tagging("ner_conll2003_dev", "BiLSTM-100 + char BiLSTM-25 + CRF", 55),
    ],
    budget=True,
    machine=True,
)
#: benchmarks/tagging_levers.py's levers, each alone on the BiLSTM-100 + char BiLSTM-25 +
#: CRF recipe.
_LEVERS = {
    "baseline": "the recipe (casing feature, lower-cased words, word dropout 0.05)",
    "no_casing": "without the casing feature, words keep their case",
    "char_units_50": "character BiLSTM of 50 units instead of 25",
    "word_dropout_20": "word dropout 0.2",
    "rare_word_dropout": "rare-word dropout 1.0 (singletons read by characters half the time)",
    "char_lm": "contextual string features: character LMs of 128 units, 5 epochs",
    "weight_averaging": "weight averaging 0.999",
}
TAGGING_LEVERS = RunTable(
    readme="apps/tagging/README.md",
    first_header="lever (CoNLL-2003 NER, 20 epochs each)",
    columns=[
        Column("dev F1", "f1", _points, missing=_NOT_MEASURED),
        Column("dev F1, unseen mentions", "unseen_f1", _points, missing=_NOT_MEASURED),
        Column("unseen mentions", "unseen_gold_entities", integer),
        Column("epochs", "epochs_trained", integer),
    ],
    rows=[_tagging(f"ner_lever_{name}", what) for name, what in _LEVERS.items()],
    machine=True,
)
TAGGING_NER_COMPARE = RunTable(
    readme="apps/tagging/README.md",
    first_header="variant (CoNLL-2003 NER, 8 minutes each, Adam 1e-3 without decay)",
    columns=[
        Column("dev F1 (best epoch)", "dev_f1", _points),
        Column("epochs", "epochs", integer),
        Column("parameters", "parameters", integer),
    ],
    rows=[
        Row("tagging", f"ner_compare_{run}", what, wall_key="wall_time_s", shared="ner_compare",
            budget_minutes=8)
        for run, what in (
            ("lstm_crf", "BiLSTM + CRF"),
            ("lstm_softmax", "BiLSTM + softmax"),
            ("gru_crf", "BiGRU + CRF"),
            ("cifg_crf", "Bi-CIFG-LSTM (Greff et al.) + CRF"),
        )
    ],
    budget=True,
    machine=True,
)
TAGGING_POS = RunTable(
    readme="apps/tagging/README.md",
    first_header="model (UD English EWT UPOS, no pretrained embeddings)",
    columns=[
        Column("dev accuracy", "accuracy", percent),
        Column("dev accuracy, unseen words", "unseen_accuracy", percent),
        Column("test accuracy", "test_accuracy", percent, missing=_NOT_MEASURED),
        Column("test accuracy, unseen words", "test_unseen_accuracy", percent,
               missing=_NOT_MEASURED),
        Column("dev accuracy of the members", "member_accuracy", _members),
        Column("parameters", "parameters", integer),
    ],
    rows=[
        _tagging("pos_final", "**Final recipe**: the ensemble below, trained again and scored "
                 "on dev and test (`python -m benchmarks.tagging_final pos`)", 60,
                 **_final_dev_keys("accuracy", "unseen_accuracy", "member_accuracy")),
        _tagging("pos_dev_ensemble_fast_posterior", "**Ensemble of 3**: 2x BiLSTM-200 / BiGRU-200 "
                 "/ BiLSTM-200 + char BiLSTM-50 + CRF, word dropout 0.2, weight averaging 0.999, "
                 "19.5 min each; log-linear pool decoded by its marginals (`--decoding "
                 "posterior`)", 60),
        _tagging("pos_dev_ensemble_fast", "the same members, the pool decoded by Viterbi", 60),
        _tagging("pos_dev_ensemble_replicate_posterior", "a replicate, every seed shifted by "
                 "100, posterior decoding", 60),
        _tagging("pos_dev_ensemble_replicate", "the replicate, Viterbi decoding", 60),
        _tagging("pos_dev_ensemble_mixed", "ensemble of 4, character BiLSTM and CNN in turn, "
                 "14.5 min each", 60),
        _tagging("pos_dev_ema", "one 2x BiLSTM-200 + char BiLSTM-50 + CRF, word dropout 0.2, "
                 "weight averaging 0.999 (trained before padding was masked)", 60),
        _tagging("pos_dev_ema_rdrop", "the same + variational recurrent dropout 0.25 (before "
                 "padding was masked)", 60),
        _tagging("pos_dev", "the same without weight averaging (before padding was masked)", 30),
        _tagging("pos_dev_1x100", "BiLSTM-100 + char BiLSTM-25 + CRF (before padding was "
                 "masked)", 28),
    ],
    budget=True,
    machine=True,
)


# --------------------------------------------------------------------------- apps/language_model


def _lm(run: str, what: str, budget: float | None = None, **keys: str) -> Row:
    return Row("language_model", run, what, keys=keys, wall_key="train_seconds",
               budget_minutes=budget)


#: A character model's tokens are characters: its bits per token are bits per character.
_CHAR_KEYS = {"valid_bits_per_char": "valid_bits_per_token"}
LANGUAGE_MODEL = RunTable(
    readme="apps/language_model/README.md",
    first_header="model (whole validation split, state carried, one stream)",
    columns=[
        Column("valid perplexity", "valid_perplexity", fixed(2)),
        Column("valid nats/token", "valid_nats_per_token", fixed(3)),
        Column("valid bits/char", "valid_bits_per_char", fixed(3)),
        Column("n-gram valid perplexity", "ngram_valid_perplexity", fixed(2)),
        Column("test perplexity", "test_perplexity", fixed(2), missing=_NOT_MEASURED),
        Column("epochs of 200 windows", "epochs_trained", integer),
        Column("parameters", "parameters", integer),
    ],
    rows=[
        _lm("shakespeare_lstm", "**Tiny Shakespeare**, characters: 2x LSTM-512, embedding 64, "
            "locked dropout 0.25, 32 streams x 128 (7-gram Kneser-Ney beside it)", 60,
            **_CHAR_KEYS),
        _lm("final", "**PTB final recipe**: ptb_lstm_light_dropout's flags with `--mixed-"
            "precision auto`, the output bias started at the log unigram frequencies; trained, "
            "then scored on valid and test by `python -m benchmarks.language_model final`", 60,
            valid_perplexity="dev_perplexity", valid_nats_per_token="dev_nats_per_token",
            valid_bits_per_char="dev_bits_per_char",
            ngram_valid_perplexity="dev_ngram_perplexity"),
        _lm("ptb_lstm_light_dropout", "**PTB**, words: 2x LSTM-400, tied embeddings (no output "
            "bias), locked dropout 0.25, input dropout 0.1, 64 streams x 35, bfloat16 "
            "(5-gram Kneser-Ney beside it)", 60),
        _lm("ptb_lstm", "the same with locked dropout 0.4, input dropout 0.2, the rate halved "
            "after every epoch without improvement", 60),
    ],
    budget=True,
    machine=True,
)
LANGUAGE_MODEL_COMPARE = RunTable(
    readme="apps/language_model/README.md",
    first_header="model (Tiny Shakespeare, 1 layer of 256, 32 streams x 100, 10 minutes)",
    columns=[
        Column("valid nats/char", "valid_nats_per_token", fixed(3)),
        Column("7-gram valid nats/char", "ngram_valid_nats_per_token", fixed(3)),
        Column("epochs of 100 windows", "epochs_trained", integer),
        Column("parameters", "parameters", integer),
    ],
    rows=[
        _lm("compare_lstm_stateful", "LSTM, stateful truncated BPTT", 10),
        _lm("compare_lstm_stateless", "LSTM, independent windows (stateless)", 10),
        _lm("compare_cifg_stateful", "CIFG (Greff et al.), stateful", 10),
        _lm("compare_gru_stateful", "GRU, stateful", 10),
    ],
    budget=True,
    machine=True,
)
_DIAGNOSIS_VARIANTS = (
    "app_tied_no_bias", "app_tied_bias", "app_untied", "keras_untied", "keras_tied_no_bias",
    "keras_tied_bias", "app_tied_bias_unigram", "keras_untied_unigram",
    "app_tied_bias_unigram_lr_1e-3", "app_tied_bias_lr_1e-3", "app_tied_bias_stateless",
    "app_tied_bias_reset_every_window", "app_tied_bias_no_mid_validation",
)
LANGUAGE_MODEL_DIAGNOSIS = RunTable(
    readme="apps/language_model/README.md",
    first_header="variant (`benchmarks.lm_diagnosis`)",
    columns=[
        Column("what it is", "description", text),
        Column("valid ppl, step 100", "val_perplexity_step100", fixed(1)),
        Column("valid ppl, step 200", "val_perplexity_step200", fixed(1)),
        Column("train ppl, step 200", "train_perplexity_step200", fixed(1)),
        Column("parameters", "parameters", integer),
    ],
    rows=[Row("language_model", f"diagnosis_{variant}", f"`{variant}`", wall_key="wall_seconds")
          for variant in _DIAGNOSIS_VARIANTS],
)


#: README table name -> table.
TABLES = {
    "targets": TARGETS,
    "sentiment-results": SENTIMENT,
    "demo": DEMO,
    "pipeline-results": PIPELINE,
    "pipeline-targets": PIPELINE_TARGETS,
    "captioning-shapes": CAPTIONING_SHAPES,
    "captioning-flickr8k": CAPTIONING_FLICKR8K,
    "captioning-feature-cache": CAPTIONING_FEATURE_CACHE,
    "reliability": RELIABILITY,
    "reliability-run": RELIABILITY_RUN,
    "tuning-jsb": ABLATION_JSB,
    "tuning-demo": ABLATION_DEMO,
    "serving": SERVING,
    "serving-run": SERVING_RUN,
    "app-speed": APP_SPEED,
    "app-speed-run": APP_SPEED_RUN,
    "translation-results": TRANSLATION,
    "translation-scheduled-sampling": TRANSLATION_SCHEDULED_SAMPLING,
    "tagging-ner": TAGGING_NER,
    "tagging-levers": TAGGING_LEVERS,
    "tagging-ner-compare": TAGGING_NER_COMPARE,
    "tagging-pos": TAGGING_POS,
    "language-model-results": LANGUAGE_MODEL,
    "language-model-compare": LANGUAGE_MODEL_COMPARE,
    "language-model-diagnosis": LANGUAGE_MODEL_DIAGNOSIS,
    **DIAGNOSTICS_TABLES,
}
