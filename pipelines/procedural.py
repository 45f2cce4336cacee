"""Procedural tasks that need no download: long-range toy problems and a captioning set.

Every generator is deterministic given its ``seed``: the examples are drawn with NumPy's
``default_rng(seed)`` up front (or rendered in-graph from parameters drawn that way), so
two calls with the same arguments give identical datasets, in the same order.
"""

from __future__ import annotations

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
