"""Tiny generated data and tiny training commands of every app, for the campaign's trials.

Each `AppSpec` says how to train the app tiny through its command line (`python -m
apps.<app> train ...`), on data written by `write_data`, and what a resumed run promises:
`equal_weights` where the final weights of a run killed and resumed equal those of an
uninterrupted run (bit for bit), and otherwise why not.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import random
from pathlib import Path

from benchmarks.reliability.common import run

WORDS = ["the", "a", "film", "story", "actor", "plot", "music", "scene", "ending", "cast"]
POSITIVE = ["great", "wonderful", "superb", "moving", "brilliant", "fun"]
NEGATIVE = ["awful", "boring", "dull", "weak", "terrible", "silly"]
PEOPLE = ["Alice", "Bob", "Carol", "Dave", "Erin"]
PLACES = ["Paris", "London", "Berlin", "Rome"]
LEXICON = {"the": "die", "cat": "katze", "dog": "hund", "sees": "sieht", "big": "gross",
           "small": "klein", "house": "haus", "man": "mann", "eats": "isst", "red": "rot"}


def reviews(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for index in range(count):
        label = index % 2
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        for _ in range(2):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        records.append({"label": label, "text": " ".join(words)})
    return records


def tagged_sentences(count: int, seed: int) -> list[list[tuple[str, str, str]]]:
    """(token, POS, IOB1 NER tag) sentences: "PER met PER in LOC ." and similar."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        first, second, place = rng.choice(PEOPLE), rng.choice(PEOPLE), rng.choice(PLACES)
        sentences.append([(first, "NNP", "I-PER"), ("met", "VBD", "O"), (second, "NNP", "I-PER"),
                          ("in", "IN", "O"), (place, "NNP", "I-LOC"), (".", ".", "O")])
    return sentences


def conll_text(sentences) -> str:
    lines = ["-DOCSTART- -X- O O", ""]
    for sentence in sentences:
        lines += [f"{token} {pos} I-NP {ner}" for token, pos, ner in sentence] + [""]
    return "\n".join(lines) + "\n"


def conllu_text(sentences) -> str:
    lines = []
    for index, sentence in enumerate(sentences):
        lines.append(f"# sent_id = s{index}")
        lines += [f"{i + 1}\t{token}\t{token.lower()}\t{'PROPN' if pos == 'NNP' else 'X'}\t{pos}\t_\t0\tdep\t_\t_"
                  for i, (token, pos, _) in enumerate(sentence)]  # fmt: skip
        lines.append("")
    return "\n".join(lines) + "\n"


def pairs(count: int, seed: int) -> tuple[list[str], list[str]]:
    """Source sentences and their 'translation': words mapped, order reversed."""
    rng = random.Random(seed)
    sources, targets = [], []
    for _ in range(count):
        words = [rng.choice(list(LEXICON)) for _ in range(rng.randint(2, 5))]
        sources.append(" ".join(words))
        targets.append(" ".join(LEXICON[word] for word in reversed(words)))
    return sources, targets


def lm_text(lines: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(" ".join(rng.choice(WORDS + POSITIVE) for _ in range(rng.randint(3, 9))) + "\n"
                   for _ in range(lines))


def write_data(folder: Path) -> dict[str, Path]:
    """Every app's tiny data in `folder`; returns the paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"sentiment": folder / "sentiment"}
    paths["sentiment"].mkdir(exist_ok=True)
    with gzip.open(paths["sentiment"] / "train.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in reviews(240, seed=1))
    test = ["label\ttext", *(f"{r['label']}\t{r['text']}" for r in reviews(40, seed=2))]
    (paths["sentiment"] / "test.tsv").write_text("\n".join(test) + "\n", encoding="utf-8")
    for name, count, seed in (("tagging_train", 64, 1), ("tagging_dev", 16, 2)):
        paths[name] = folder / f"{name}.txt"
        paths[name].write_text(conll_text(tagged_sentences(count, seed)), encoding="utf-8")
    paths["tagging_conllu"] = folder / "tagging_train.conllu"
    paths["tagging_conllu"].write_text(conllu_text(tagged_sentences(64, 3)), encoding="utf-8")
    for name, count, seed in (("train", 400, 3), ("valid", 40, 4)):
        sources, targets = pairs(count, seed)
        for side, lines in (("en", sources), ("de", targets)):
            paths[f"{name}_{side}"] = folder / f"{name}.{side}"
            paths[f"{name}_{side}"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths["lm"] = folder / "lm.txt"
    paths["lm"].write_text(lm_text(200, seed=5), encoding="utf-8")
    return paths


@dataclasses.dataclass(frozen=True)
class AppSpec:
    """How the campaign trains one app tiny, and what its resumed runs promise."""

    app: str
    epochs: int
    flags: tuple[str, ...]  # data and model flags of `train` (after --run-dir), from `data`
    equal_weights: bool
    why: str  # what a resumed run promises, and why not equal weights where it does not

    def train_argv(self, run_dir: Path, data: dict[str, Path]) -> list[str]:
        flags = [flag.format(**{key: str(path) for key, path in data.items()}) for flag in self.flags]
        return ["train", "--run-dir", str(run_dir), "--epochs", str(self.epochs),
                "--verbose", "2", "--mixed-precision", "float32", *flags]  # fmt: skip


APPS = {
    "adding": AppSpec(
        "adding", 4,
        ("--length", "6", "--units", "8", "--train-examples", "256", "--valid-examples", "64",
         "--test-examples", "64", "--batch-size", "16", "--steps-per-epoch", "5", "--stop-mse", "0"),
        equal_weights=True,
        why="bit-equal final weights: a seeded, repeated stream of which the resumed run "
        "skips the batches already trained, and no dropout"),
    "sentiment": AppSpec(
        "sentiment", 3,
        ("--data-dir", "{sentiment}", "--embedding-size", "8", "--units", "8", "--vocab-size", "60",
         "--min-frequency", "1", "--batch-size", "300", "--max-length", "20",
         "--length-bucket-width", "8", "--valid-fraction", "0.2", "--embedding-dropout", "0.1"),
        equal_weights=False,
        why="each epoch is one pass over the data, and a resumed process's first pass has "
        "the first epoch's order (and dropout masks): every epoch once, none lost"),
    "tagging": AppSpec(
        "tagging", 3,
        ("--task", "ner", "--train-file", "{tagging_train}", "--dev-file", "{tagging_dev}",
         "--units", "8", "--char-units", "4", "--char-embedding-size", "4",
         "--word-embedding-size", "8", "--batch-size", "16", "--dropout", "0.1"),
        equal_weights=False,
        why="one pass over the data an epoch, word dropout and dropout: every epoch once, "
        "none lost"),
    "translation": AppSpec(
        "translation", 3,
        ("--train-source", "{train_en}", "--train-target", "{train_de}", "--valid-source",
         "{valid_en}", "--valid-target", "{valid_de}", "--vocab-size", "40",
         "--embedding-size", "8", "--encoder-units", "8", "--decoder-units", "8",
         "--attention-units", "8", "--dropout", "0", "--batch-size", "200",
         "--beam-width", "2", "--maximum-decoding-length", "8", "--heatmap-sentences", "0",
         "--bleu-max-sentences", "20"),
        equal_weights=False,
        why="one pass over the data an epoch, bucketed in shuffled order: every epoch "
        "once, none lost"),
    "language_model": AppSpec(
        "language_model", 3,
        ("--text-file", "{lm}", "--valid-fraction", "0.2", "--tokenizer", "word",
         "--units", "8", "--num-layers", "1", "--bptt", "8", "--batch-size", "4",
         "--ngram-order", "0", "--steps-per-epoch", "6"),
        equal_weights=False,
        why="stateful streams whose carried state is not part of the backup: every epoch "
        "once, none lost"),
}


#: Trained tiny runs (one epoch) that fuzz and serving trials read: name -> (app, flags
#: added to the app's tiny train command).
RUNS = {
    **{app: (app, ()) for app in APPS},
    "tagging_pos": ("tagging", ("--task", "pos", "--train-file", "{tagging_conllu}", "--dev-file", "",
                                "--valid-fraction", "0.25")),
    "sentiment_sentencepiece": ("sentiment", ("--tokenizer", "sentencepiece", "--seed", "5")),
    "translation_separate": ("translation", ("--vocabulary", "separate", "--vocab-size", "34")),
    "language_model_char": ("language_model", ("--tokenizer", "char")),
}


def ensure_run(work: Path, data: dict[str, Path], name: str) -> Path:
    """work/trained/<name>: the tiny run `name` of `RUNS`, trained one epoch through the
    app's command line unless it is there already."""
    app, extra = RUNS[name]
    run_dir = work / "trained" / name
    if not (run_dir / "metrics.json").exists():
        spec = dataclasses.replace(APPS[app], epochs=1)
        flags = [flag.format(**{key: str(path) for key, path in data.items()}) for flag in extra]
        finished = run(f"apps.{app}", [*spec.train_argv(run_dir, data), *flags])
        if finished.returncode != 0:
            raise RuntimeError(f"training {run_dir} failed: {finished.stderr[-2000:]}")
    return run_dir
