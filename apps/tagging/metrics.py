"""Scores: entity precision/recall/F1 per type (seqeval, conlleval-compatible) for NER and
chunking, token accuracy for POS. Entities are always scored on the spans of the original
tags, whatever scheme the model was trained in."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from seqeval.metrics import classification_report

from pipelines.tag_schemes import convert_tags, tags_to_spans


def token_accuracy(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Fraction of tokens whose predicted tag equals the gold tag."""
    _check_aligned(gold, predicted)
    total = sum(len(sentence) for sentence in gold)
    correct = sum(g == p for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps))
    return correct / max(total, 1)


def entity_scores(
    gold: Sequence[Sequence[str]],
    gold_scheme: str,
    predicted: Sequence[Sequence[str]],
    predicted_scheme: str,
) -> dict:
    """Micro-averaged entity precision, recall and F1, and the same per entity type.

    Both sides are decoded into spans in their own scheme (exactly; invalid predicted
    sequences leniently, like conlleval), written as BIO and scored by seqeval's default
    (conlleval) mode: an entity counts only if its type and both boundaries match.

    Returns:
        {"precision", "recall", "f1", "gold_entities", "predicted_entities",
         "per_type": {type: {"precision", "recall", "f1", "support"}}} with values in [0, 1].
    """
    _check_aligned(gold, predicted)
    gold_bio = [convert_tags(tags, gold_scheme, "bio") for tags in gold]
    predicted_bio = [convert_tags(tags, predicted_scheme, "bio") for tags in predicted]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns about types without predictions
        report = classification_report(gold_bio, predicted_bio, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    per_type = {
        name: {
            "precision": float(values["precision"]),
            "recall": float(values["recall"]),
            "f1": float(values["f1-score"]),
            "support": int(values["support"]),
        }
        for name, values in report.items()
        if not name.endswith(" avg")
    }
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "gold_entities": sum(len(tags_to_spans(tags, "bio")) for tags in gold_bio),
        "predicted_entities": sum(len(tags_to_spans(tags, "bio")) for tags in predicted_bio),
        "per_type": per_type,
    }


def _check_aligned(gold, predicted) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    for index, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {index}: {len(g)} gold tags but {len(p)} predicted")


def format_entity_report(scores: dict) -> str:
    """A conlleval-like table: one row per type, then the micro average."""
    lines = [f"{'type':<8} {'precision':>9} {'recall':>9} {'F1':>9} {'support':>8}"]
    for name, values in sorted(scores["per_type"].items()):
        lines.append(
            f"{name:<8} {100 * values['precision']:>9.2f} {100 * values['recall']:>9.2f} "
            f"{100 * values['f1']:>9.2f} {values['support']:>8}"
        )
    lines.append(
        f"{'overall':<8} {100 * scores['precision']:>9.2f} {100 * scores['recall']:>9.2f} "
        f"{100 * scores['f1']:>9.2f} {scores['gold_entities']:>8}"
    )
    return "\n".join(lines)
