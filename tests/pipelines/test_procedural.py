import re

import numpy as np
import pytest

from pipelines import procedural


def _arrays(dataset):
    return list(dataset.as_numpy_iterator())


def test_adding_problem_markers_and_targets():
    examples = _arrays(procedural.adding_problem(50, length=20, seed=3))
    assert len(examples) == 50
    for inputs, target in examples:
        assert inputs.shape == (20, 2) and inputs.dtype == np.float32
        assert target.shape == () and target.dtype == np.float32
        marked = np.flatnonzero(inputs[:, 1])
        assert len(marked) == 2 and set(inputs[:, 1]) <= {0.0, 1.0}
        assert marked[0] < 10 <= marked[1]
        assert np.all((inputs[:, 0] >= 0) & (inputs[:, 0] < 1))
        np.testing.assert_allclose(target, inputs[marked, 0].sum(), rtol=1e-6)


def test_adding_problem_is_deterministic_given_seed():
    first = _arrays(procedural.adding_problem(5, 12, seed=1))
    again = _arrays(procedural.adding_problem(5, 12, seed=1))
    other = _arrays(procedural.adding_problem(5, 12, seed=2))
    for (a, b), (c, d) in zip(first, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert not np.array_equal(first[0][0], other[0][0])


def test_adding_problem_rejects_too_short():
    with pytest.raises(ValueError, match="length >= 2"):
        procedural.adding_problem(1, 1)


def test_copy_task_layout():
    examples = _arrays(procedural.copy_task(10, delay=7, copy_length=4, num_symbols=5, seed=0))
    for inputs, targets in examples:
        assert inputs.shape == targets.shape == (7 + 8,)
        symbols = inputs[:4]
        assert np.all((symbols >= 1) & (symbols <= 5))
        assert np.all(inputs[4:10] == 0) and inputs[10] == 6 and np.all(inputs[11:] == 0)
        assert np.all(targets[:11] == 0)
        np.testing.assert_array_equal(targets[11:], symbols)


def test_sign_memory_task_target_is_sign_of_first_input():
    examples = _arrays(procedural.sign_memory_task(64, length=30, noise_stddev=0.5, seed=4))
    targets = np.array([target for _, target in examples])
    assert 0 < targets.mean() < 1  # both classes present
    for inputs, target in examples:
        assert inputs.shape == (30, 1)
        assert abs(inputs[0, 0]) == 1.0
        assert target == (1.0 if inputs[0, 0] > 0 else 0.0)


def test_rendered_shapes_captions():
    dataset = procedural.rendered_shapes_captions(24, image_size=32, seed=5)
    examples = _arrays(dataset)
    assert len(examples) == 24
    grammar = re.compile(
        r"^a (big|small) (\w+) (circle|square|triangle)"
        r"( (at the|on the|in the) .+| (to the left of|to the right of|above|below) "
        r"a (big|small) (\w+) (circle|square|triangle))$"
    )
    for example in examples:
        image, caption = example["image"], example["caption"].decode()
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        match = grammar.match(caption)
        assert match, caption
        colour = procedural.COLOURS[match.group(2)]
        assert np.any(np.all(image == colour, axis=-1)), caption  # the named colour is drawn
    again = _arrays(procedural.rendered_shapes_captions(24, image_size=32, seed=5))
    assert [e["caption"] for e in again] == [e["caption"] for e in examples]
    np.testing.assert_array_equal(again[3]["image"], examples[3]["image"])


def test_rendered_shapes_captions_are_a_function_of_the_image():
    """Two shapes are named left (or upper) one first, offset mostly along one axis; a lone
    shape keeps clear of the thirds that name its position."""
    captions = [e["caption"].decode() for e in _arrays(procedural.rendered_shapes_captions(300, seed=6))]
    assert not any(" to the right of " in c or " below " in c for c in captions)
    assert any(" to the left of " in c for c in captions) and any(" above " in c for c in captions)
    assert sum(" at the " in c or " on the " in c or " in the " in c for c in captions) > 50
