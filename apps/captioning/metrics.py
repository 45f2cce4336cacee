"""The standard COCO caption metrics through `pycocoevalcap`: BLEU-1..4, ROUGE-L and
CIDEr-D always; METEOR and SPICE when Java (and, for SPICE, the Stanford CoreNLP models
it downloads on first use) is present, otherwise skipped with a note.

Captions are tokenised as `pycocoevalcap` does (`PTBTokenizer`: Stanford's Java tokenizer,
lowercased, punctuation dropped); without Java the same rules run in Python
(`apps.captioning.ptb_tokenizer`). Scores are on the 0-1 scale of `pycocoevalcap`
(CIDEr-D on its 0-10 scale; papers print BLEU and CIDEr-D x 100).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from apps.captioning.ptb_tokenizer import ptb_tokenize

logger = logging.getLogger(__name__)

#: The figures `coco_scores` returns, by their pycocoevalcap names in lower case.
BASE_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider")
JAVA_METRICS = ("meteor", "spice")


@functools.cache
def java_available() -> bool:
    """Whether a working `java` is on the PATH."""
    java = shutil.which("java")
    if java is None:
        return False
    try:
        return subprocess.run([java, "-version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.cache
def _meteor():
    """One METEOR scorer (a Java process that takes 10-30 s to load) per process."""
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def _spice_models_present() -> bool:
    from pycocoevalcap.spice import get_stanford_models

    jar = os.path.join(get_stanford_models.SPICEDIR, get_stanford_models.SPICELIB,
                       f"{get_stanford_models.JAR}.jar")
    return os.path.exists(jar)


def tokenize(captions: Mapping[object, Sequence[str]], use_java: bool | None = None) -> dict:
    """{key: [caption, ...]} -> {key: [tokenised caption, ...]} as the metrics read them:
    with Java, pycocoevalcap's PTBTokenizer; without, `ptb_tokenize` (the same rules)."""
    if use_java is None:
        use_java = java_available()
    if use_java:
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        keyed = {key: [{"caption": text} for text in texts] for key, texts in captions.items()}
        return PTBTokenizer().tokenize(keyed)
    return {key: [ptb_tokenize(text) for text in texts] for key, texts in captions.items()}


def coco_scores(
    candidates: Mapping[object, str],
    references: Mapping[object, Sequence[str]],
    metrics: Sequence[str] = BASE_METRICS + JAVA_METRICS,
    use_java: bool | None = None,
) -> tuple[dict[str, float], list[str]]:
    """The corpus scores of one candidate caption per image against all its references.

    Args:
        candidates: {image key: generated caption}.
        references: {image key: [reference captions]}, the same keys.
        metrics: which of `BASE_METRICS` and `JAVA_METRICS` to compute.
        use_java: None: when Java is present.

    Returns:
        ({metric: score}, notes): notes say which metrics were skipped and why.
    """
    if set(candidates) != set(references):
        raise ValueError("candidates and references must cover the same images")
    if not candidates:
        raise ValueError("no captions to score")
    if use_java is None:
        use_java = java_available()
    unknown = set(metrics) - set(BASE_METRICS) - set(JAVA_METRICS)
    if unknown:
        raise ValueError(f"unknown caption metrics {sorted(unknown)}")
    # pycocoevalcap's scorers iterate over dict keys: plain strings keep any key type safe.
    keys = {key: str(index) for index, key in enumerate(candidates)}
    gts = tokenize({keys[key]: list(references[key]) for key in candidates}, use_java)
    res = tokenize({keys[key]: [candidates[key]] for key in candidates}, use_java)
    scores: dict[str, float] = {}
    notes: list[str] = []
    if any(name.startswith("bleu") for name in metrics):
        from pycocoevalcap.bleu.bleu import Bleu

        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        for n, value in enumerate(bleu, start=1):
            if f"bleu_{n}" in metrics:
                scores[f"bleu_{n}"] = float(value)
    if "rouge_l" in metrics:
        from pycocoevalcap.rouge.rouge import Rouge

        scores["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    if "cider" in metrics:
        from pycocoevalcap.cider.cider import Cider  # CIDEr-D: clipped counts, length penalty

        scores["cider"] = float(Cider().compute_score(gts, res)[0])
    if "meteor" in metrics:
        if use_java:
            scores["meteor"] = float(_meteor().compute_score(gts, res)[0])
        else:
            notes.append("METEOR skipped: it runs in Java, and no java is on the PATH")
    if "spice" in metrics:
        if not use_java:
            notes.append("SPICE skipped: it runs in Java, and no java is on the PATH")
        elif not _spice_models_present():
            notes.append(
                "SPICE skipped: it needs the Stanford CoreNLP 3.6.0 models that pycocoevalcap "
                "downloads on first use (run `python -m pycocoevalcap.spice.get_stanford_models` "
                "on a connected machine)"
            )
        else:
            from pycocoevalcap.spice.spice import Spice

            scores["spice"] = float(Spice().compute_score(gts, res)[0])
    for note in notes:
        logger.info(note)
    return scores, notes
