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


def _records(text: str) -> list[tuple[str, str, str]]:
    """(opening key, body, closing key) of every complete record of a tagged text."""
    return re.findall(r"^<([a-z]+)> (.*) </([a-z]+)>$", text, flags=re.MULTILINE)


def test_tagged_text_records_close_their_tags_and_brackets():
    text = procedural.tagged_text(5000, seed=3, min_words=2, max_words=6, key_length=2,
                                  bracket_probability=0.3)
    assert len(text) == 5000 and set(text) <= set(procedural.TAGGED_TEXT_ALPHABET)
    records = _records(text)
    assert len(records) == text.count("\n")  # every line is one whole record
    pairs = {")": "(", "]": "[", "}": "{"}
    brackets_seen = 0
    for opening, body, closing in records:
        assert opening == closing and len(opening) == 2
        assert 2 <= len(body.split()) <= 6
        stack = []
        for char in body:
            if char in "([{":
                stack.append(char)
                brackets_seen += 1
            elif char in pairs:
                assert stack and stack.pop() == pairs[char], body
        assert not stack, body
    assert brackets_seen > 0


def test_tagged_text_is_one_language_across_seeds():
    first = procedural.tagged_text(3000, seed=1, language_seed=9)
    again = procedural.tagged_text(3000, seed=1, language_seed=9)
    other_sample = procedural.tagged_text(3000, seed=2, language_seed=9)
    other_language = procedural.tagged_text(3000, seed=1, language_seed=10)
    assert first == again and first != other_sample

    def words(text):  # of the whole records (the text ends inside one)
        whole = text.rsplit("\n", 1)[0]
        return set(re.findall(r"[a-z]+", re.sub(r"</?[a-z]+>", " ", whole)))

    lexicon = words(procedural.tagged_text(100_000, seed=0, language_seed=9))
    assert len(lexicon) <= 40
    assert words(first) <= lexicon and words(other_sample) <= lexicon
    assert not words(other_language) <= lexicon


def test_long_range_positions_are_the_closing_keys():
    text = "<ab> mo (ki) </ab>\n<c> lu </c>\n"
    positions = procedural.long_range_positions(text)
    assert "".join(text[i] for i in positions) == "abc"
    assert [text[i - 2:i] for i in positions[::2]] == ["</", "</"]


def test_reversal_translation_reverses_and_transliterates_with_one_dictionary():
    def pairs(seed):
        dataset = procedural.reversal_translation(600, vocab_size=12, min_length=1,
                                                  max_length=9, seed=seed, language_seed=4)
        return [(pair["source"].tolist(), pair["target"].tolist()) for pair in _arrays(dataset)]

    train, valid = pairs(1), pairs(2)
    lengths = [len(source) for source, _ in train]
    assert min(lengths) == 1 and max(lengths) == 9 and len(set(lengths)) == 9
    # One-word sentences show the dictionary: one or two target ids per word.
    dictionary = {source[0]: target for source, target in train if len(source) == 1}
    assert set(dictionary) == set(range(1, 13))
    assert {len(words) for words in dictionary.values()} == {1, 2}
    for source, target in valid:  # another sample of the same language
        assert min(source + target) >= 1 and max(source + target) <= 12
        assert target == [i for word in reversed(source) for i in dictionary[word]]


def test_reversal_translation_is_deterministic_and_rejects_bad_lengths():
    first = _arrays(procedural.reversal_translation(20, seed=5))
    again = _arrays(procedural.reversal_translation(20, seed=5))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["source"], b["source"])
        np.testing.assert_array_equal(a["target"], b["target"])
    with pytest.raises(ValueError, match="min_length"):
        procedural.reversal_translation(5, min_length=5, max_length=3)
