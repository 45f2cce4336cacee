"""Entity tag schemes for sequence labelling: IOB1, BIO (IOB2), BIOES (IOBES) and IO.

A tag is ``O`` (outside) or ``P-TYPE`` with a prefix P and an entity type. The schemes
differ in which prefixes mark the tokens of an entity span:

=========  ==========================================================================
``iob1``   ``I`` everywhere; ``B`` only on the first token of an entity that directly
           follows another entity of the same type (CoNLL-2003 as released).
``bio``    ``B`` on the first token of every entity, ``I`` inside (IOB2).
``bioes``  ``S`` for one-token entities; ``B`` first, ``I`` inside, ``E`` last (IOBES).
``io``     ``I`` everywhere: two adjacent entities of one type cannot be told apart.
=========  ==========================================================================

The lecture example, "Jane Villanueva of United Airlines Holding discussed the Chicago
route .", is in BIOES ``B-PER E-PER O B-ORG I-ORG E-ORG O O S-LOC O O``.

Conversions go through spans: :func:`tags_to_spans` decodes any scheme (leniently, the
way conlleval does, when a sequence is not valid in its scheme) and :func:`spans_to_tags`
writes spans in the target scheme, so that every conversion between IOB1, BIO and BIOES
is exact and reversible; conversion to IO is exact except that it merges adjacent
entities of one type (which IO cannot express).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

#: Canonical scheme names.
SCHEMES = ("iob1", "bio", "bioes", "io")
_ALIASES = {"iob2": "bio", "iobes": "bioes", "bilou": "bioes"}
#: The prefixes each scheme may use.
SCHEME_PREFIXES = {"iob1": "IB", "bio": "BI", "bioes": "BIES", "io": "I"}
OUTSIDE = "O"


class Span(NamedTuple):
    """An entity: tokens ``start`` to ``end`` (exclusive) of type ``label``."""

    start: int
    end: int
    label: str


def normalize_scheme(scheme: str) -> str:
    """The canonical name of `scheme` (``iob2`` -> ``bio``, ``iobes`` -> ``bioes``)."""
    name = scheme.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in SCHEMES:
        raise ValueError(
            f"unknown tag scheme {scheme!r}; choose one of {', '.join(SCHEMES)} "
            f"(aliases: {', '.join(f'{a}={c}' for a, c in _ALIASES.items())})"
        )
    return name


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``. Raises on other forms."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, separator, label = tag.partition("-")
    if not separator or prefix not in ("B", "I", "E", "S") or not label:
        raise ValueError(
            f"invalid entity tag {tag!r}: expected 'O' or PREFIX-TYPE with PREFIX one of "
            "B, I, E, S (e.g. 'B-PER')"
        )
    return prefix, label


def tags_to_spans(tags: Sequence[str], scheme: str = "bio") -> list[Span]:
    """The entity spans of a tag sequence.

    Valid sequences of every scheme decode exactly. Invalid ones decode leniently, as
    conlleval does: ``B``/``S`` always start an entity, ``I``/``E`` continue an open entity
    of the same type or else start one, ``E``/``S`` close the entity they are in.
    `scheme` is checked (its name and that the tags use only its prefixes would be too
    strict for model output, so only the name is checked).
    """
    normalize_scheme(scheme)
    spans: list[Span] = []
    start: int | None = None
    label = ""
    for index, tag in enumerate(tags):
        prefix, tag_label = split_tag(tag)
        if prefix == OUTSIDE:
            if start is not None:
                spans.append(Span(start, index, label))
            start = None
            continue
        if prefix in ("B", "S") or start is None or tag_label != label:
            if start is not None:
                spans.append(Span(start, index, label))
            start, label = index, tag_label
        if prefix in ("E", "S"):
            spans.append(Span(start, index + 1, label))
            start = None
    if start is not None:
        spans.append(Span(start, len(tags), label))
    return spans


def spans_to_tags(spans: Iterable[Span], length: int, scheme: str = "bio") -> list[str]:
    """Writes non-overlapping `spans` over `length` tokens in `scheme`."""
    scheme = normalize_scheme(scheme)
    tags = [OUTSIDE] * length
    previous: Span | None = None
    for span in sorted(spans, key=lambda s: s.start):
        start, end, label = span
        if not 0 <= start < end <= length:
            raise ValueError(f"span {tuple(span)} is empty or outside 0..{length}")
        if previous is not None and start < previous.end:
            raise ValueError(f"spans {tuple(previous)} and {tuple(span)} overlap")
        for index in range(start, end):
            tags[index] = f"I-{label}"
        if scheme == "bio":
            tags[start] = f"B-{label}"
        elif scheme == "bioes":
            if end - start == 1:
                tags[start] = f"S-{label}"
            else:
                tags[start], tags[end - 1] = f"B-{label}", f"E-{label}"
        elif scheme == "iob1" and previous is not None:
            if previous.end == start and previous.label == label:
                tags[start] = f"B-{label}"
        previous = Span(start, end, label)
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Converts one tag sequence from scheme `source` to scheme `target`."""
    source, target = normalize_scheme(source), normalize_scheme(target)
    if source == target and is_valid(tags, source):
        return list(tags)
    return spans_to_tags(tags_to_spans(tags, source), len(tags), target)


def invalid_position(tags: Sequence[str], scheme: str) -> int | None:
    """The first position where `tags` break the rules of `scheme`, or None if valid.

    Rules: only the scheme's prefixes; BIO/BIOES: ``I``/``E`` continue an entity of the same
    type; BIOES: an entity ends in ``E`` or is an ``S``; IOB1: ``B-X`` only right after a
    ``X`` entity token.
    """
    scheme = normalize_scheme(scheme)
    allowed = SCHEME_PREFIXES[scheme]
    previous_prefix, previous_label = OUTSIDE, ""
    for index, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if prefix != OUTSIDE and prefix not in allowed:
            return index
        inside_same = previous_prefix != OUTSIDE and previous_label == label
        if scheme == "bio" and prefix == "I" and not inside_same:
            return index
        if scheme == "iob1" and prefix == "B" and not inside_same:
            return index
        if scheme == "bioes":
            open_entity = previous_prefix in ("B", "I")
            if prefix in ("I", "E") and not (open_entity and previous_label == label):
                return index
            if prefix in ("B", "S", OUTSIDE) and open_entity:
                return index
        previous_prefix, previous_label = prefix, label
    if scheme == "bioes" and previous_prefix in ("B", "I"):
        return len(tags)
    return None


def is_valid(tags: Sequence[str], scheme: str) -> bool:
    """Whether `tags` follow every rule of `scheme` (see :func:`invalid_position`)."""
    return invalid_position(tags, scheme) is None


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """Guesses the scheme of a corpus: ``bioes`` if any ``E-``/``S-`` tag appears; ``iob1``
    if an ``I-`` tag starts an entity anywhere (as in CoNLL-2003); ``bio`` if ``B-`` tags
    appear otherwise; ``iob1`` when only ``I-`` tags appear (IO data reads identically)."""
    saw_b = saw_iob1 = False
    for tags in sequences:
        previous_prefix, previous_label = OUTSIDE, ""
        for tag in tags:
            prefix, label = split_tag(tag)
            if prefix in ("E", "S"):
                return "bioes"
            if prefix == "B":
                saw_b = True
            if prefix == "I" and (previous_prefix == OUTSIDE or previous_label != label):
                saw_iob1 = True
            previous_prefix, previous_label = prefix, label
    if saw_iob1 or not saw_b:
        return "iob1"
    return "bio"


def entity_types(sequences: Iterable[Sequence[str]]) -> list[str]:
    """The sorted entity types used in `sequences`."""
    return sorted({split_tag(tag)[1] for tags in sequences for tag in tags} - {""})


def scheme_tags(types: Iterable[str], scheme: str) -> list[str]:
    """Every tag of `scheme` over entity `types`: ``O`` first, then by type and prefix."""
    scheme = normalize_scheme(scheme)
    prefixes = {"iob1": "BI", "bio": "BI", "bioes": "BIES", "io": "I"}[scheme]
    return [OUTSIDE] + [f"{prefix}-{label}" for label in sorted(set(types)) for prefix in prefixes]
