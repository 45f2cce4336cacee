"""Procedural tasks that need no download: long-range toy problems, a captioning set, a
character stream for language models and a toy parallel corpus.

Every generator is deterministic given its ``seed``: the examples are drawn with NumPy's
``default_rng(seed)`` up front (or rendered in-graph from parameters drawn that way), so
two calls with the same arguments give identical datasets, in the same order.
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 210, 40),
    "purple": (150, 60, 190),
    "white": (245, 245, 245),
}
_BACKGROUND = (90, 90, 90)


def adding_problem(num_examples: int, length: int, seed: int = 0) -> tf.data.Dataset:
    """The adding problem of Hochreiter & Schmidhuber (1997), experiment 4.

    Each input step holds two channels: channel 0 a value drawn uniformly from [0, 1),
    channel 1 a marker that is 1 at exactly two steps, one in the first half of the
    sequence and one in the second half, and 0 elsewhere. The target is the sum of the two
    marked values, so a model must carry the first value across at least ``length / 2``
    steps.

    Args:
        num_examples: number of sequences.
        length: number of time steps (at least 2).
        seed: random seed; equal seeds give equal datasets.

    Returns:
        A dataset of ``(inputs, target)``: float32 ``[length, 2]`` and float32 ``[]``.
    """
    if length < 2:
        raise ValueError(f"adding_problem needs length >= 2, got {length}")
    rng = np.random.default_rng(seed)
    values = rng.random((num_examples, length), dtype=np.float32)
    half = length // 2
    first = rng.integers(0, half, size=num_examples)
    second = rng.integers(half, length, size=num_examples)
    markers = np.zeros((num_examples, length), dtype=np.float32)
    rows = np.arange(num_examples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    inputs = np.stack([values, markers], axis=-1)
    targets = (values[rows, first] + values[rows, second]).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((inputs, targets))


def copy_task(
    num_examples: int,
    delay: int,
    copy_length: int = 10,
    num_symbols: int = 8,
    seed: int = 0,
) -> tf.data.Dataset:
    """The copy (memory) task of Arjovsky, Shah & Bengio (2016), after Hochreiter (1997).

    The input shows ``copy_length`` symbols drawn from ``1..num_symbols``, then
    ``delay - 1`` blanks (0), then the delimiter ``num_symbols + 1``, then ``copy_length``
    blanks. The target is blank for the first ``delay + copy_length`` steps and then
    repeats the symbols. Memoryless guessing scores a cross-entropy of
    ``copy_length * log(num_symbols) / (delay + 2 * copy_length)``.

    Returns:
        A dataset of ``(inputs, targets)``, both int32 ``[delay + 2 * copy_length]``; the
        vocabulary size is ``num_symbols + 2`` (blank, symbols, delimiter).
    """
    if delay < 1:
        raise ValueError(f"copy_task needs delay >= 1, got {delay}")
    rng = np.random.default_rng(seed)
    total = delay + 2 * copy_length
    symbols = rng.integers(1, num_symbols + 1, size=(num_examples, copy_length), dtype=np.int32)
    inputs = np.zeros((num_examples, total), dtype=np.int32)
    targets = np.zeros((num_examples, total), dtype=np.int32)
    inputs[:, :copy_length] = symbols
    inputs[:, copy_length + delay - 1] = num_symbols + 1
    targets[:, -copy_length:] = symbols
    return tf.data.Dataset.from_tensor_slices((inputs, targets))


def sign_memory_task(
    num_examples: int,
    length: int,
    noise_stddev: float = 1.0,
    seed: int = 0,
) -> tf.data.Dataset:
    """Remember the sign of the first input for ``length`` steps (the lecture-notes toy).

    Step 0 holds +1 or -1 (equally likely); every later step holds Gaussian noise of
    standard deviation ``noise_stddev`` that carries no information. The target is 1 when
    the first input was positive and 0 otherwise, so a model must keep one bit in its state
    while ignoring ``length - 1`` distracting inputs.

    Returns:
        A dataset of ``(inputs, target)``: float32 ``[length, 1]`` and float32 ``[]``
        (0 or 1, for a sigmoid / binary cross-entropy output).
    """
    if length < 1:
        raise ValueError(f"sign_memory_task needs length >= 1, got {length}")
    rng = np.random.default_rng(seed)
    inputs = (rng.standard_normal((num_examples, length, 1)) * noise_stddev).astype(np.float32)
    signs = rng.integers(0, 2, size=num_examples)
    inputs[:, 0, 0] = np.where(signs == 1, 1.0, -1.0)
    return tf.data.Dataset.from_tensor_slices((inputs, signs.astype(np.float32)))


def _position_phrase(x: float, y: float) -> str:
    vertical = "top" if y < 1 / 3 else ("bottom" if y > 2 / 3 else "middle")
    horizontal = "left" if x < 1 / 3 else ("right" if x > 2 / 3 else "centre")
    if vertical == "middle" and horizontal == "centre":
        return "in the centre"
    if vertical == "middle":
        return f"on the {horizontal}"
    if horizontal == "centre":
        return f"at the {vertical}"
    return f"at the {vertical} {horizontal}"


def _relation_phrase(first: tuple[float, float], second: tuple[float, float]) -> str:
    dx, dy = second[0] - first[0], second[1] - first[1]
    if abs(dx) >= abs(dy):
        return "to the left of" if dx > 0 else "to the right of"
    return "above" if dy > 0 else "below"


def _clear_of_thresholds(x: float, y: float, margin: float) -> bool:
    """Whether a centre lies at least `margin` away from the thirds that name positions."""
    return all(abs(value - third) >= margin for value in (x, y) for third in (1 / 3, 2 / 3))


def _clear_relation(first: tuple[float, float], second: tuple[float, float], ratio: float) -> bool:
    """Whether one axis dominates the offset between two centres by `ratio` (so that
    "to the left of" and "above" cannot both describe it)."""
    dx, dy = abs(second[0] - first[0]), abs(second[1] - first[1])
    return max(dx, dy) >= ratio * min(dx, dy)


def rendered_shapes_captions(
    num_examples: int,
    image_size: int = 64,
    max_shapes: int = 2,
    seed: int = 0,
) -> tf.data.Dataset:
    """Images of coloured shapes on a grey background, each with a generated caption.

    Each image holds one to ``max_shapes`` (1 or 2) non-overlapping shapes (circle, square,
    triangle) in one of six colours and two sizes. Captions follow a small grammar:
    ``"a big red circle at the top left"`` for one shape and
    ``"a small blue square to the left of a big yellow triangle"`` for two. The caption is
    a function of the image: a lone shape's centre keeps clear of the thirds that name its
    position, two shapes are offset mostly along one axis and are named left one first
    ("to the left of") or upper one first ("above"). The images are rendered in the graph
    from parameters drawn with NumPy, so the set is deterministic and cheap to regenerate.

    Returns:
        A dataset of ``{"image": uint8 [image_size, image_size, 3], "caption": string}``.
    """
    if max_shapes not in (1, 2):
        raise ValueError(f"max_shapes must be 1 or 2, got {max_shapes}")
    rng = np.random.default_rng(seed)
    colour_names = list(COLOURS)
    # Per example and slot: shape id, colour id, centre (x, y) in [0, 1], radius, present.
    params = np.zeros((num_examples, 2, 6), dtype=np.float32)
    captions = []
    for index in range(num_examples):
        count = int(rng.integers(1, max_shapes + 1))
        placed: list[tuple[float, float, float]] = []
        phrases = []
        for slot in range(count):
            shape = int(rng.integers(len(SHAPES)))
            colour = int(rng.integers(len(colour_names)))
            if slot == 1:  # two shapes of one kind and colour would make captions ambiguous
                while (shape, colour) == (int(params[index, 0, 0]), int(params[index, 0, 1])):
                    colour = int(rng.integers(len(colour_names)))
            big = bool(rng.integers(2))
            radius = 0.17 if big else 0.1
            for _ in range(1000):
                x, y = (float(value) for value in rng.uniform(radius + 0.02, 1 - radius - 0.02, size=2))
                apart = all(
                    np.hypot(x - px, y - py) > (radius + pr) * 1.5 + 0.02 for px, py, pr in placed
                )
                clear = (
                    _clear_relation(placed[0][:2], (x, y), 1.5) if placed
                    else count == 2 or _clear_of_thresholds(x, y, 0.04)
                )
                if apart and clear:
                    break
            placed.append((x, y, radius))
            params[index, slot] = (shape, colour, x, y, radius, 1.0)
            phrases.append(f"a {'big' if big else 'small'} {colour_names[colour]} {SHAPES[shape]}")
        if count == 1:
            captions.append(f"{phrases[0]} {_position_phrase(placed[0][0], placed[0][1])}")
        else:
            if _relation_phrase(placed[0][:2], placed[1][:2]) in ("to the right of", "below"):
                phrases.reverse()  # name the left (or upper) shape first
                placed.reverse()
            relation = _relation_phrase(placed[0][:2], placed[1][:2])
            captions.append(f"{phrases[0]} {relation} {phrases[1]}")

    palette = tf.constant([COLOURS[name] for name in colour_names], dtype=tf.float32)
    coordinates = (tf.range(image_size, dtype=tf.float32) + 0.5) / image_size
    grid_y, grid_x = tf.meshgrid(coordinates, coordinates, indexing="ij")

    def render(shape_params, caption):
        image = tf.ones([image_size, image_size, 3]) * tf.constant(_BACKGROUND, tf.float32)
        for slot in range(2):
            shape, colour, x, y, radius, present = tf.unstack(shape_params[slot])
            dx, dy = grid_x - x, grid_y - y
            circle = dx * dx + dy * dy <= radius * radius
            square = tf.logical_and(tf.abs(dx) <= radius * 0.85, tf.abs(dy) <= radius * 0.85)
            triangle = tf.logical_and(
                tf.abs(dy) <= radius * 0.9, tf.abs(dx) <= (dy + radius * 0.9) * 0.6
            )
            mask = tf.gather(tf.stack([circle, square, triangle]), tf.cast(shape, tf.int32))
            mask = tf.logical_and(mask, present > 0)[..., None]
            image = tf.where(mask, tf.gather(palette, tf.cast(colour, tf.int32)), image)
        return {"image": tf.cast(image, tf.uint8), "caption": caption}

    dataset = tf.data.Dataset.from_tensor_slices((params, np.array(captions, dtype=object)))
    return dataset.map(render, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


#: Every character a :func:`tagged_text` may hold, in a fixed order (a vocabulary).
TAGGED_TEXT_ALPHABET = "\n ()/<>[]{}abcdefghijklmnopqrstuvwxyz"
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_BRACKETS = {"(": ")", "[": "]", "{": "}"}


def _pseudo_words(rng: np.random.Generator, count: int) -> list[str]:
    """`count` distinct pronounceable words of one to three consonant-vowel syllables."""
    words: set[str] = set()
    while len(words) < count:
        syllables = int(rng.integers(1, 4))
        words.add(
            "".join(rng.choice(list(_CONSONANTS)) + rng.choice(list(_VOWELS)) for _ in range(syllables))
        )
    return sorted(words)


def tagged_text(
    num_chars: int,
    seed: int = 0,
    language_seed: int = 0,
    num_words: int = 40,
    successors: int = 4,
    min_words: int = 1,
    max_words: int = 2,
    key_length: int = 1,
    bracket_probability: float = 0.15,
) -> str:
    """A character stream with local and long-range structure, for language models.

    The text is a sequence of records, one a line, each wrapped in a tag whose key is
    drawn at random: ``<key> body </key>``. A body holds ``min_words..max_words`` words
    of a fixed lexicon of ``num_words`` pseudo-words (consonant-vowel syllables), each
    word followed by one of ``successors`` likely next words (a seeded word-bigram Markov
    chain). Before a word, a bracket ``(``, ``[`` or ``{`` opens with probability
    ``bracket_probability`` (at most three deep); after a word, the innermost open bracket
    closes with twice that probability, and every bracket still open closes at the end
    of the body, always with its matching partner.

    So predicting the text takes three kinds of memory: the next word needs the current
    one (short), a closing bracket needs the innermost open one, and the closing key
    needs the opening key, ``key_length`` random letters seen a whole body earlier (with
    the default one or two words, 7 to about 25 characters; more words make the gap
    longer): it is unpredictable (``log 26`` nats a letter) to a model that cannot carry
    it that far, and certain to one that can. :func:`long_range_positions` finds those
    letters.

    Args:
        num_chars: length of the text (the last record is cut there).
        seed: random seed of the records (keys, lengths, words, brackets).
        language_seed: random seed of the lexicon and the word chain: texts with one
            language seed and different seeds (a training and a validation text) are
            samples of one language.

    Returns:
        The text: ``num_chars`` characters of ``TAGGED_TEXT_ALPHABET``.
    """
    if num_chars < 1:
        raise ValueError(f"tagged_text needs num_chars >= 1, got {num_chars}")
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    if not 1 <= successors <= num_words:
        raise ValueError(f"need 1 <= successors <= num_words, got {successors}, {num_words}")
    language = np.random.default_rng(language_seed)
    lexicon = _pseudo_words(language, num_words)
    next_words = np.stack([language.choice(num_words, successors, replace=False) for _ in lexicon])
    next_weights = language.dirichlet(np.ones(successors), size=num_words)
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    parts: list[str] = []
    length = 0
    word = int(rng.integers(num_words))
    while length < num_chars:
        key = "".join(rng.choice(letters, key_length))
        body, open_brackets = [], []
        for _ in range(int(rng.integers(min_words, max_words + 1))):
            token = ""
            if len(open_brackets) < 3 and rng.random() < bracket_probability:
                bracket = str(rng.choice(list(_BRACKETS)))
                open_brackets.append(bracket)
                token = bracket
            word = int(next_words[word, rng.choice(successors, p=next_weights[word])])
            token += lexicon[word]
            if open_brackets and rng.random() < 2 * bracket_probability:
                token += _BRACKETS[open_brackets.pop()]
            body.append(token)
        body[-1] += "".join(_BRACKETS[bracket] for bracket in reversed(open_brackets))
        record = f"<{key}> {' '.join(body)} </{key}>\n"
        parts.append(record)
        length += len(record)
    return "".join(parts)[:num_chars]


def long_range_positions(text: str) -> np.ndarray:
    """Indices of the key letters of every closing tag ``</key>`` of a :func:`tagged_text`:
    the characters that only a model carrying the opening key across the body predicts."""
    spans = [range(*match.span(1)) for match in re.finditer(r"</([a-z]+)>", text)]
    return np.array([index for span in spans for index in span], dtype=np.int64)


def reversal_translation(
    num_examples: int,
    vocab_size: int = 40,
    min_length: int = 2,
    max_length: int = 40,
    seed: int = 0,
    language_seed: int = 0,
) -> tf.data.Dataset:
    """A toy parallel corpus: translation is reversal plus word-by-word transliteration.

    A source sentence is a sequence of word ids drawn from ``1..vocab_size`` with Zipf's
    law (probability proportional to 1 / rank), its length log-uniform between
    ``min_length`` and ``max_length`` (many short sentences, a long tail, as in real
    corpora). Its translation reads the source backwards and writes each word through a
    fixed dictionary (drawn from ``language_seed``; the sentences from ``seed``, so a
    training and a validation set share a language seed) as one target word, or, for about a third
    of the words, two; so target lengths differ from source lengths by up to a factor of
    two, and sorting by source length and by target length give different batches (the
    setting of Morishita et al. 2017). Id 0 is never produced: it is free for padding.

    Returns:
        A dataset of ``{"source": int32 [S], "target": int32 [T]}``, ids in
        ``1..vocab_size`` on both sides.
    """
    if not 1 <= min_length <= max_length:
        raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}, {max_length}")
    if vocab_size < 2:
        raise ValueError(f"reversal_translation needs vocab_size >= 2, got {vocab_size}")
    language = np.random.default_rng(language_seed)
    first = language.permutation(vocab_size) + 1
    second = np.where(
        language.random(vocab_size) < 1 / 3, language.integers(1, vocab_size + 1, vocab_size), 0
    )
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, vocab_size + 1)
    lengths = np.exp(rng.uniform(np.log(min_length), np.log(max_length + 1), num_examples))
    lengths = np.minimum(lengths.astype(np.int64), max_length)
    sources = rng.choice(vocab_size, size=int(lengths.sum()), p=zipf / zipf.sum()) + 1
    source_rows = np.split(sources, np.cumsum(lengths)[:-1])
    target_rows = []
    for row in source_rows:
        words = row[::-1] - 1
        pairs = np.stack([first[words], second[words]], axis=1).reshape(-1)
        target_rows.append(pairs[pairs > 0])
    ragged = {
        "source": tf.RaggedTensor.from_row_lengths(sources.astype(np.int32), lengths),
        "target": tf.RaggedTensor.from_row_lengths(
            np.concatenate(target_rows).astype(np.int32), [len(row) for row in target_rows]
        ),
    }
    return tf.data.Dataset.from_tensor_slices(ragged)
