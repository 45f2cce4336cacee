"""Scores: entity precision/recall/F1 per type (conlleval's, equal to seqeval's default
mode) for NER and chunking, token accuracy for POS. Entities are always scored on the spans of the original
tags, whatever scheme the model was trained in.

Beside each overall figure, the same figure restricted to what the training split never
shows (`TrainingText`): the accuracy on tokens whose word form is no token of the
training split, and the entity P/R/F1 on mentions whose token sequence occurs nowhere in
it. Test splits hold more of those than dev, so these figures predict the dev-to-test gap.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

from pipelines.tag_schemes import Span, tags_to_spans


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
    sequences leniently, like conlleval) and scored as conlleval and seqeval's default
    mode do: an entity counts only if its type and both boundaries match.

    Returns:
        {"precision", "recall", "f1", "gold_entities", "predicted_entities",
         "per_type": {type: {"precision", "recall", "f1", "support"}}} with values in [0, 1].
    """
    _check_aligned(gold, predicted)
    gold_spans, predicted_spans = _spans(gold, gold_scheme), _spans(predicted, predicted_scheme)
    counts = {name: collections.Counter() for name in ("gold", "predicted", "correct")}
    for g, p in zip(gold_spans, predicted_spans):
        counts["gold"].update(span.label for span in g)
        counts["predicted"].update(span.label for span in p)
        counts["correct"].update(span.label for span in g & p)
    totals = {name: sum(counter.values()) for name, counter in counts.items()}
    per_type = {
        name: {
            **_precision_recall_f1(counts["correct"][name], counts["predicted"][name], counts["gold"][name]),
            "support": counts["gold"][name],
        }
        for name in sorted(counts["gold"].keys() | counts["predicted"].keys())
    }
    return {
        **_precision_recall_f1(totals["correct"], totals["predicted"], totals["gold"]),
        "gold_entities": totals["gold"],
        "predicted_entities": totals["predicted"],
        "per_type": per_type,
    }


def _spans(sequences: Sequence[Sequence[str]], scheme: str) -> list[set[Span]]:
    return [set(tags_to_spans(tags, scheme)) for tags in sequences]


def _precision_recall_f1(correct: int, predicted: int, gold: int) -> dict:
    """Micro scores from counts; 0 where a denominator is 0 (as seqeval's zero_division=0)."""
    precision, recall = correct / max(predicted, 1), correct / max(gold, 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


class TrainingText:
    """The token sequences of a training split, to tell what it never shows.

    A word is unseen when its form (exact: case and digits as written) is no token of the
    training sentences. A mention (a span of tokens) is unseen when its token sequence is
    no contiguous token sequence of any training sentence, whatever the tags there: "New
    York" is seen if some training sentence holds "New York", as an entity or not.
    """

    def __init__(self, sentences: Iterable[Sequence[str]]):
        self.sentences = [tuple(sentence) for sentence in sentences]
        self.words = {word for sentence in self.sentences for word in sentence}
        self._seen: dict[tuple[str, ...], bool] = {}

    def seen(self, mentions: Iterable[Sequence[str]]) -> set[tuple[str, ...]]:
        """The token sequences among `mentions` that occur in a training sentence."""
        mentions = {tuple(mention) for mention in mentions}
        by_length: dict[int, set[tuple[str, ...]]] = collections.defaultdict(set)
        for mention in mentions - self._seen.keys():
            if not all(word in self.words for word in mention):
                self._seen[mention] = False  # holds a word the training split lacks
            elif len(mention) == 1:
                self._seen[mention] = True
            else:
                by_length[len(mention)].add(mention)  # a look at the sentences decides
        for length, wanted in by_length.items():
            first_words = {mention[0] for mention in wanted}
            found = {
                sentence[i : i + length]
                for sentence in self.sentences
                for i in range(len(sentence) - length + 1)
                if sentence[i] in first_words and sentence[i : i + length] in wanted
            }
            self._seen.update({mention: mention in found for mention in wanted})
        return {mention for mention in mentions if self._seen[mention]}


def unseen_token_accuracy(
    tokens: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    training: TrainingText,
) -> dict:
    """{"unseen_accuracy", "unseen_tokens"}: token accuracy over the tokens whose word form
    the training split never shows (accuracy 0 when there are none)."""
    _check_aligned(gold, predicted)
    pairs = [
        g == p
        for words, gs, ps in zip(tokens, gold, predicted)
        for word, g, p in zip(words, gs, ps)
        if word not in training.words
    ]
    return {"unseen_accuracy": sum(pairs) / max(len(pairs), 1), "unseen_tokens": len(pairs)}


def unseen_entity_scores(
    tokens: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    gold_scheme: str,
    predicted: Sequence[Sequence[str]],
    predicted_scheme: str,
    training: TrainingText,
) -> dict:
    """Micro entity P/R/F1 restricted to mentions unseen in training (`TrainingText`):
    recall over the gold mentions whose token sequence the training split never shows,
    precision over the predicted mentions of that kind. A match needs the same type and
    boundaries (conlleval), as in `entity_scores`, so a correct mention is unseen on both
    sides or on neither.

    Returns:
        {"unseen_precision", "unseen_recall", "unseen_f1", "unseen_gold_entities",
         "unseen_predicted_entities"}.
    """
    _check_aligned(gold, predicted)
    gold_spans, predicted_spans = _spans(gold, gold_scheme), _spans(predicted, predicted_scheme)
    mentions = [
        tuple(words[span.start : span.end])
        for words, g, p in zip(tokens, gold_spans, predicted_spans)
        for span in g | p
    ]
    seen = training.seen(mentions)

    def unseen(words, spans):
        return {span for span in spans if tuple(words[span.start : span.end]) not in seen}

    gold_count = predicted_count = correct = 0
    for words, g, p in zip(tokens, gold_spans, predicted_spans):
        g, p = unseen(words, g), unseen(words, p)
        gold_count, predicted_count, correct = gold_count + len(g), predicted_count + len(p), correct + len(g & p)
    scores = _precision_recall_f1(correct, predicted_count, gold_count)
    return {
        **{f"unseen_{name}": value for name, value in scores.items()},
        "unseen_gold_entities": gold_count,
        "unseen_predicted_entities": predicted_count,
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
    if "unseen_f1" in scores:  # mentions whose token sequence the training split lacks
        lines.append(
            f"{'unseen':<8} {100 * scores['unseen_precision']:>9.2f} {100 * scores['unseen_recall']:>9.2f} "
            f"{100 * scores['unseen_f1']:>9.2f} {scores['unseen_gold_entities']:>8}"
        )
    return "\n".join(lines)
