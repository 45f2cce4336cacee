"""Tag-scheme conversions: exact, reversible, and the lecture table."""

from __future__ import annotations

import itertools
import random

import pytest

from pipelines.tag_schemes import (
    SCHEMES,
    Span,
    convert_tags,
    detect_scheme,
    entity_types,
    invalid_position,
    is_valid,
    normalize_scheme,
    scheme_tags,
    spans_to_tags,
    tags_to_spans,
)

SENTENCE = "Jane Villanueva of United Airlines Holding discussed the Chicago route .".split()
LECTURE = {
    "io": "I-PER I-PER O I-ORG I-ORG I-ORG O O I-LOC O O".split(),
    "iob1": "I-PER I-PER O I-ORG I-ORG I-ORG O O I-LOC O O".split(),
    "bio": "B-PER I-PER O B-ORG I-ORG I-ORG O O B-LOC O O".split(),
    "bioes": "B-PER E-PER O B-ORG I-ORG E-ORG O O S-LOC O O".split(),
}
LECTURE_SPANS = [Span(0, 2, "PER"), Span(3, 6, "ORG"), Span(8, 9, "LOC")]


@pytest.mark.parametrize("source", SCHEMES)
@pytest.mark.parametrize("target", SCHEMES)
def test_lecture_table(source, target):
    assert len(LECTURE[source]) == len(SENTENCE)
    assert tags_to_spans(LECTURE[source], source) == LECTURE_SPANS
    assert convert_tags(LECTURE[source], source, target) == LECTURE[target]
    assert is_valid(LECTURE[target], target)


# Two adjacent entities of one type: IOB1 marks the second with B.
ADJACENT = {
    "iob1": "I-LOC B-LOC O I-PER I-PER B-PER I-ORG".split(),
    "bio": "B-LOC B-LOC O B-PER I-PER B-PER B-ORG".split(),
    "bioes": "S-LOC S-LOC O B-PER E-PER S-PER S-ORG".split(),
}
ADJACENT_SPANS = [
    Span(0, 1, "LOC"), Span(1, 2, "LOC"), Span(3, 5, "PER"), Span(5, 6, "PER"), Span(6, 7, "ORG")
]


@pytest.mark.parametrize("source", ADJACENT)
@pytest.mark.parametrize("target", ADJACENT)
def test_adjacent_entities_of_one_type(source, target):
    assert tags_to_spans(ADJACENT[source], source) == ADJACENT_SPANS
    assert convert_tags(ADJACENT[source], source, target) == ADJACENT[target]


def test_io_merges_adjacent_entities_of_one_type():
    io = convert_tags(ADJACENT["iob1"], "iob1", "io")
    assert io == "I-LOC I-LOC O I-PER I-PER I-PER I-ORG".split()
    assert tags_to_spans(io, "io") == [Span(0, 2, "LOC"), Span(3, 6, "PER"), Span(6, 7, "ORG")]


def _random_spans(rng: random.Random, length: int) -> list[Span]:
    spans, position = [], 0
    while position < length:
        if rng.random() < 0.4:
            end = min(length, position + rng.randint(1, 3))
            spans.append(Span(position, end, rng.choice("AB")))
            position = end
        else:
            position += rng.randint(0, 2) or 1
    return spans


def test_random_round_trips_are_exact():
    rng = random.Random(0)
    lossless = ("iob1", "bio", "bioes")
    for _ in range(300):
        length = rng.randint(0, 12)
        spans = _random_spans(rng, length)
        for scheme in SCHEMES:
            tags = spans_to_tags(spans, length, scheme)
            assert is_valid(tags, scheme), (scheme, tags)
            if scheme in lossless:
                assert tags_to_spans(tags, scheme) == spans
                for target in lossless:
                    converted = convert_tags(tags, scheme, target)
                    assert convert_tags(converted, target, scheme) == tags


def test_exhaustive_small_sequences_all_schemes_agree_on_spans():
    """Every tag sequence of length <= 4 over one type: converting keeps the spans."""
    tags = ["O", "B-X", "I-X", "E-X", "S-X"]
    for length in range(5):
        for sequence in itertools.product(tags, repeat=length):
            spans = tags_to_spans(sequence, "bioes")
            for target in ("iob1", "bio", "bioes"):
                converted = convert_tags(sequence, "bioes", target)
                assert is_valid(converted, target)
                assert tags_to_spans(converted, target) == spans


def test_lenient_decoding_like_conlleval():
    # I after O starts an entity; a type change starts a new entity; E closes.
    assert tags_to_spans(["O", "I-PER", "I-LOC", "E-LOC", "I-LOC"], "bio") == [
        Span(1, 2, "PER"), Span(2, 4, "LOC"), Span(4, 5, "LOC")
    ]
    assert convert_tags(["O", "I-PER", "I-PER"], "bio", "bio") == ["O", "B-PER", "I-PER"]


def test_invalid_positions():
    assert invalid_position(["O", "I-PER"], "bio") == 1
    assert invalid_position(["O", "I-PER"], "iob1") is None
    assert invalid_position(["O", "B-PER"], "iob1") == 1
    assert invalid_position(["B-PER", "O"], "bioes") == 1
    assert invalid_position(["B-PER", "I-PER"], "bioes") == 2
    assert invalid_position(["S-PER"], "bio") == 0
    assert invalid_position(["B-PER"], "io") == 0


def test_detect_scheme():
    assert detect_scheme([LECTURE["iob1"]]) == "iob1"
    assert detect_scheme([LECTURE["bio"]]) == "bio"
    assert detect_scheme([LECTURE["bioes"]]) == "bioes"
    assert detect_scheme([["O", "O"]]) == "iob1"


def test_tag_sets_and_types():
    assert entity_types([LECTURE["bio"]]) == ["LOC", "ORG", "PER"]
    assert scheme_tags(["PER"], "bioes") == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert scheme_tags(["PER", "LOC"], "io") == ["O", "I-LOC", "I-PER"]


def test_bad_names_and_tags_are_clear_errors():
    assert normalize_scheme("IOB2") == "bio"
    assert normalize_scheme("iobes") == "bioes"
    with pytest.raises(ValueError, match="unknown tag scheme 'bilo'"):
        normalize_scheme("bilo")
    with pytest.raises(ValueError, match="invalid entity tag 'X-PER'"):
        tags_to_spans(["X-PER"], "bio")
    with pytest.raises(ValueError, match="overlap"):
        spans_to_tags([Span(0, 2, "A"), Span(1, 3, "A")], 3, "bio")
