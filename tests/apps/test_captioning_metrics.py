"""apps/captioning metrics: the COCO metrics on hand-checked examples, the Python PTB
tokenizer equal to pycocoevalcap's Java one (where Java is present) and on its documented
rules, and the two baselines."""

from __future__ import annotations

import numpy as np
import pytest

from apps.captioning.baselines import most_frequent_caption, nearest_neighbour_captions
from apps.captioning.metrics import coco_scores, java_available, tokenize
from apps.captioning.ptb_tokenizer import ptb_tokenize, ptb_tokenize_line
from apps.captioning.tasks import exact_accuracy

EXAMPLES = [
    "A child in a pink dress is climbing up a set of stairs in an entry way .",
    "A man's dog doesn't like the colour grey in the centre .",
    'He said, "Hello there!" (quietly) [and] {left} ...',
    "I cannot go; gonna wanna gotta -- it's 5:30 p.m. in the U.S.A.",
    "The t-shirt costs $5.50 & 100% cotton, isn't it?",
    "'Tis the dog's toy...she's 'happy' `really' ok",
    "Two men/women at 3.5 km, 1,000 people! Wow!! Why?? yes--no",
    "A café naïve résumé \u2013 en dash \u2014 em dash \u2018single\u2019 \u201cdouble\u201d \u2026",
    "They'd we'll I'm you're we've y'all o'clock ca n't",
    "dog . . . cat. Mr. Smith and Dr. Who",
    'Young boy with a black " ADHD " t-shirt nodding off',
    "children's toys aren't boys' toys",
    "rock 'n' roll and 'em",
    "Hello.World a.b e-mail mother-in-law 2-year-old #1",
]


def test_identical_candidate_and_references_score_the_maximum():
    references = {1: ["A dog runs on the grass ."], 2: ["Two men play football"]}
    candidates = {1: "a dog runs on the grass", 2: "Two men play football ."}
    for use_java in (False, *((True,) if java_available() else ())):
        scores, notes = coco_scores(candidates, references, ("bleu_1", "bleu_4", "rouge_l", "cider"), use_java)
        assert scores["bleu_1"] == pytest.approx(1.0) and scores["bleu_4"] == pytest.approx(1.0)
        assert scores["rouge_l"] == pytest.approx(1.0)
        assert scores["cider"] == pytest.approx(10.0)  # CIDEr-D x 10, one reference each
        assert notes == []


def test_bleu_and_rouge_of_a_hand_checked_example():
    # Candidate "the cat sat" against "the cat sat on the mat": every candidate n-gram
    # matches (precisions 1), brevity penalty exp(1 - 6/3) = e^-1; ROUGE-L: LCS 3,
    # P = 1, R = 1/2, F = (1 + 1.2^2) P R / (R + 1.2^2 P).
    scores, _ = coco_scores({0: "the cat sat"}, {0: ["the cat sat on the mat"]},
                            ("bleu_1", "bleu_3", "rouge_l"), use_java=False)
    assert scores["bleu_1"] == pytest.approx(np.exp(-1), rel=1e-6)
    assert scores["bleu_3"] == pytest.approx(np.exp(-1), rel=1e-6)
    assert scores["rouge_l"] == pytest.approx(2.44 * 0.5 / (0.5 + 1.44), rel=1e-6)


def test_java_metrics_are_skipped_with_a_note_without_java():
    scores, notes = coco_scores({0: "a dog"}, {0: ["a dog"]}, use_java=False)
    assert "meteor" not in scores and "spice" not in scores
    assert any(note.startswith("METEOR skipped") for note in notes)
    assert any(note.startswith("SPICE skipped") for note in notes)


@pytest.mark.skipif(not java_available(), reason="needs Java for pycocoevalcap's PTBTokenizer")
def test_python_tokenizer_equals_the_java_ptb_tokenizer():
    java = tokenize({index: [text] for index, text in enumerate(EXAMPLES)}, use_java=True)
    python = tokenize({index: [text] for index, text in enumerate(EXAMPLES)}, use_java=False)
    assert python == java


def test_ptb_tokenizer_rules():
    assert ptb_tokenize_line("A man's dog doesn't run.") == ["a", "man", "'s", "dog", "does", "n't", "run", "."]
    assert ptb_tokenize_line('He said "hi" (twice)') == ["he", "said", "``", "hi", "''", "-lrb-", "twice", "-rrb-"]
    assert ptb_tokenize_line("I cannot, at 5:30 p.m.") == ["i", "can", "not", ",", "at", "5:30", "p.m.", "."]
    assert ptb_tokenize_line("1,000 dogs! Wow!!") == ["1,000", "dogs", "!", "wow", "!!"]
    # Punctuation is dropped, except tokens the metrics' list misses (lowercased brackets).
    assert ptb_tokenize("A dog, (black) -- runs...") == "a dog -lrb- black -rrb- runs"


def test_baselines():
    train = [["A dog runs .", "a dog runs"], ["A cat sleeps"], ["a bird flies"]]
    assert most_frequent_caption(train) == "A dog runs ."  # normalised: seen twice
    # All unique: the caption of the most frequent words.
    assert most_frequent_caption([["a dog"], ["a dog sits here now"], ["zebra"]]) == "a dog"
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2]])
    queries = np.array([[0.1, 3.0], [2.0, 0.1]])
    assert nearest_neighbour_captions(vectors, train, queries) == ["A cat sleeps", "A dog runs ."]
    assert exact_accuracy(["a dog runs", "a cat"], [["A dog runs ."], ["a cat sleeps"]]) == 0.5
