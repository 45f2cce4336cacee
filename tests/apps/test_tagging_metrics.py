"""apps/tagging/metrics: scores restricted to what the training split never shows, on a
tiny example counted by hand, and equal to the overall scores when nothing is seen."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics import classification_report

from apps.tagging.metrics import (
    TrainingText,
    entity_scores,
    token_accuracy,
    unseen_entity_scores,
    unseen_token_accuracy,
)
from pipelines.tag_schemes import convert_tags

TRAINING = [["John", "lives", "in", "New", "York", "."], ["Acme", "Corp", "hired", "Mary"]]

# Gold tags in IOB1 (as CoNLL-2003 is released), predictions in BIOES (as trained).
DEV = [
    # Mary: seen word; New York: seen bigram; "visited" (unseen) is a spurious MISC.
    (["Mary", "visited", "New", "York"], ["I-PER", "O", "I-LOC", "I-LOC"], ["S-PER", "S-MISC", "B-LOC", "E-LOC"]),
    # Anna: unseen word, found; Acme Corp: seen bigram, found; York: seen word, missed.
    (["Anna", "joined", "Acme", "Corp", "in", "York"], ["I-PER", "O", "I-ORG", "I-ORG", "O", "I-LOC"],
     ["S-PER", "O", "B-ORG", "E-ORG", "O", "O"]),
    # "John Corp": both words seen, the bigram never: unseen, missed (the predicted "John"
    # is seen, so it does not count against unseen precision).
    (["John", "Corp", "left"], ["I-ORG", "I-ORG", "O"], ["S-PER", "O", "O"]),
    # "Zed Inc": unseen, missed.
    (["Zed", "Inc", "."], ["I-ORG", "I-ORG", "O"], ["O", "O", "O"]),
]  # fmt: skip


def test_a_mention_is_seen_when_its_token_sequence_occurs_in_a_training_sentence():
    training = TrainingText(TRAINING)
    asked = [("New", "York"), ("York",), ("york",), ("York", "New"), ("York", "."), ("Corp", "hired", "Mary"),
             ("Mary", "John"), ("Zed",)]  # fmt: skip
    assert training.seen(asked) == {("New", "York"), ("York",), ("York", "."), ("Corp", "hired", "Mary")}
    # Answers are cached; asking again, alone or with others, gives the same.
    assert training.seen([("York", "New"), ("New", "York")]) == {("New", "York")}


def test_unseen_entity_scores_counted_by_hand():
    tokens, gold, predicted = (list(column) for column in zip(*DEV))
    scores = unseen_entity_scores(tokens, gold, "iob1", predicted, "bioes", TrainingText(TRAINING))
    # Unseen gold: Anna (PER), John Corp (ORG), Zed Inc (ORG); unseen predicted: visited
    # (MISC), Anna (PER); correct: Anna.
    assert scores["unseen_gold_entities"] == 3 and scores["unseen_predicted_entities"] == 2
    assert scores["unseen_precision"] == pytest.approx(1 / 2)
    assert scores["unseen_recall"] == pytest.approx(1 / 3)
    assert scores["unseen_f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    overall = entity_scores(gold, "iob1", predicted, "bioes")
    assert (overall["gold_entities"], overall["predicted_entities"]) == (7, 6)
    assert overall["precision"] == pytest.approx(4 / 6) and overall["recall"] == pytest.approx(4 / 7)


def test_unseen_token_accuracy_counted_by_hand():
    tokens = [sentence for sentence, _, _ in DEV]
    gold = [["X"] * len(sentence) for sentence in tokens]
    predicted = [list(tags) for tags in gold]
    predicted[0][0] = predicted[0][1] = "Y"  # Mary (seen) and visited (unseen) wrong
    scores = unseen_token_accuracy(tokens, gold, predicted, TrainingText(TRAINING))
    # Unseen words: visited, Anna, joined, left, Zed, Inc.
    assert scores == {"unseen_accuracy": pytest.approx(5 / 6), "unseen_tokens": 6}
    assert unseen_token_accuracy([["Mary"]], [["X"]], [["X"]], TrainingText(TRAINING)) == {
        "unseen_accuracy": 0.0,
        "unseen_tokens": 0,
    }


def test_with_an_empty_training_split_the_unseen_scores_are_the_overall_scores():
    rng = random.Random(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    tokens, gold, predicted = [], [], []
    for _ in range(50):
        length = rng.randint(1, 12)
        tokens.append([rng.choice("abcde") for _ in range(length)])
        gold.append([rng.choice(tags) for _ in range(length)])
        predicted.append([tag if rng.random() < 0.7 else rng.choice(tags) for tag in gold[-1]])
    nothing = TrainingText([])
    unseen = unseen_entity_scores(tokens, gold, "bio", predicted, "bio", nothing)
    overall = entity_scores(gold, "bio", predicted, "bio")
    for name in ("precision", "recall", "f1"):
        assert unseen[f"unseen_{name}"] == pytest.approx(overall[name])
    assert unseen["unseen_gold_entities"] == overall["gold_entities"]
    assert unseen["unseen_predicted_entities"] == overall["predicted_entities"]
    accuracy = unseen_token_accuracy(tokens, gold, predicted, nothing)
    assert accuracy["unseen_accuracy"] == pytest.approx(token_accuracy(gold, predicted))


@pytest.mark.parametrize("scheme", ["iob1", "bio", "bioes", "io"])
def test_entity_scores_equal_seqeval_on_random_sequences_valid_or_not(scheme):
    """seqeval (conlleval mode) on both sides converted to BIO is the reference."""
    rng = random.Random(len(scheme))
    prefixes = {"iob1": "IB", "bio": "BI", "bioes": "BIES", "io": "I"}[scheme]
    tags = ["O"] + [f"{p}-{t}" for p in prefixes for t in ("PER", "LOC", "MISC")]
    gold, predicted = [], []
    for _ in range(300):
        length = rng.randint(1, 15)
        gold.append([rng.choice(tags) for _ in range(length)])  # often invalid: decoded leniently
        predicted.append([tag if rng.random() < 0.6 else rng.choice(tags) for tag in gold[-1]])
    predicted.append(["O"])
    gold.append([f"{prefixes[0]}-ORG"])  # a type only gold has
    scores = entity_scores(gold, scheme, predicted, scheme)
    reference = classification_report(
        [convert_tags(t, scheme, "bio") for t in gold],
        [convert_tags(t, scheme, "bio") for t in predicted],
        output_dict=True,
        zero_division=0,
    )
    micro = reference["micro avg"]
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx(
        (micro["precision"], micro["recall"], micro["f1-score"])
    )
    assert scores["gold_entities"] == micro["support"]
    per_type = {k: v for k, v in reference.items() if not k.endswith(" avg")}
    assert sorted(scores["per_type"]) == sorted(per_type)
    for name, values in per_type.items():
        ours = scores["per_type"][name]
        assert (ours["precision"], ours["recall"], ours["f1"], ours["support"]) == pytest.approx(
            (values["precision"], values["recall"], values["f1-score"], values["support"])
        )
